package quickack

import "syscall"

// tcpQuickAck is TCP_QUICKACK from linux/tcp.h (syscall does not name it).
const tcpQuickAck = 12

func setQuickAck(fd int) {
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, tcpQuickAck, 1)
}
