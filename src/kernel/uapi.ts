// Kernel ABI numbers the kernel layer speaks, each declared once
// (linux/socket.h, linux/netlink.h, linux/rtnetlink.h, linux/netconf.h, linux/sched.h).

// Sockets.
export const AF_NETLINK = 16;
export const SOL_SOCKET = 1;
export const SOL_NETLINK = 270;
export const MSG_DONTWAIT = 0x40;
export const SO_MEMINFO = 55;
export const SK_MEMINFO_DROPS = 8;
export const SK_MEMINFO_VARS = 9;

// Netlink protocols and socket options.
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;

// Netlink message header.
export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;

// rtnetlink message types.
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWNETCONF = 80;
export const RTM_DELNETCONF = 81;
export const RTM_GETNETCONF = 82;

/** linux/netconf.h: struct netconfmsg is one byte (the family), padded to 4. */
export const NETCONFMSG_LEN = 4;
export const NETCONFA_IFINDEX = 1;
export const NETCONFA_RP_FILTER = 3;
/** NETCONFA_IFINDEX values that stand for net.ipv4.conf.all and net.ipv4.conf.default. */
export const NETCONFA_IFINDEX_ALL = -1;
export const NETCONFA_IFINDEX_DEFAULT = -2;

/** rtnetlink multicast groups (enum rtnetlink_groups) the reconciler listens to. */
export const RTNLGRP = { LINK: 1, IPV4_IFADDR: 5, IPV6_IFADDR: 9, IPV4_NETCONF: 24 } as const;

/**
 * Route and rule groups, joined only by a namespace that uses source routing:
 * elsewhere every route change would wake the daemon for nothing.
 */
export const RTNLGRP_ROUTING = { IPV4_ROUTE: 7, IPV4_RULE: 8, IPV6_ROUTE: 11, IPV6_RULE: 19 } as const;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;

/** setns(2)/unshare(2): the network namespace. */
export const CLONE_NEWNET = 0x40000000;
