package router

// spliceFlags: SPLICE_F_MOVE (a hint) | SPLICE_F_NONBLOCK.
const spliceFlags = 0x1 | 0x2
