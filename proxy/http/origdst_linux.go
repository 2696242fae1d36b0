package httpproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// Linux netfilter constants (linux/netfilter_ipv4.h, netfilter_ipv6.h).
const (
	soOriginalDst   = 80 // SO_ORIGINAL_DST, level SOL_IP
	ip6tSoOrigDst   = 80 // IP6T_SO_ORIGINAL_DST, level SOL_IPV6
	sockaddrIn6Size = 28
)

// originalDst returns the destination a client dialled before nftables
// redirected the connection to the proxy (SO_ORIGINAL_DST). On a
// connection that was not redirected it returns the proxy's own address,
// which the loop guard then refuses.
func originalDst(nc net.Conn) (netip.AddrPort, error) {
	tc, ok := unwrapTCP(nc)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("http: original destination: %T is not a TCP connection", nc)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("http: original destination: %w", err)
	}
	local, _ := netip.ParseAddrPort(tc.LocalAddr().String())
	var ap netip.AddrPort
	var serr error
	err = raw.Control(func(fd uintptr) {
		if local.Addr().Unmap().Is4() {
			var sa syscall.RawSockaddrInet4
			size := uint32(unsafe.Sizeof(sa))
			serr = getsockopt(fd, syscall.SOL_IP, soOriginalDst, unsafe.Pointer(&sa), &size)
			if serr == nil {
				port := uint16(sa.Port>>8) | uint16(sa.Port<<8)
				ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
			}
			return
		}
		var sa syscall.RawSockaddrInet6
		size := uint32(sockaddrIn6Size)
		serr = getsockopt(fd, syscall.SOL_IPV6, ip6tSoOrigDst, unsafe.Pointer(&sa), &size)
		if serr == nil {
			port := uint16(sa.Port>>8) | uint16(sa.Port<<8)
			ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("http: original destination: %w", err)
	}
	if !ap.IsValid() || ap.Port() == 0 {
		return netip.AddrPort{}, errors.New("http: original destination: none")
	}
	return ap, nil
}

func getsockopt(fd uintptr, level, name int, val unsafe.Pointer, size *uint32) error {
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, uintptr(level), uintptr(name), uintptr(val), uintptr(unsafe.Pointer(size)), 0)
	if e != 0 {
		return e
	}
	return nil
}

func unwrapTCP(nc net.Conn) (*net.TCPConn, bool) {
	for {
		switch c := nc.(type) {
		case *net.TCPConn:
			return c, true
		case *conn:
			nc = c.Conn
		default:
			return nil, false
		}
	}
}
