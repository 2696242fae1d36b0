package identity

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc6911"
)

// NAS is a RADIUS client allowed to send accounting: a Wi-Fi controller
// or an 802.1X switch, by address or prefix, with its own shared secret.
type NAS struct {
	Prefix netip.Prefix
	Secret []byte
}

// RADIUS is an accounting server (RFC 2866) that feeds the table: Start
// and Interim-Update open or extend a session binding the Framed-IP to
// Calling-Station-Id (the MAC) and User-Name; Stop closes it;
// Accounting-On/Off close every session of the NAS (it restarted).
// Each request's authenticator is checked against its NAS's secret before
// a single attribute is read: a bad one is dropped unanswered and counted.
type RADIUS struct {
	table *Table
	nas   []NAS
	log   *slog.Logger
	now   func() time.Time
	reqs  *prometheus.CounterVec
}

// Request outcomes (metric label).
const (
	outcomeOK         = "ok"
	outcomeBadAuth    = "bad_authenticator"
	outcomeUnknownNAS = "unknown_nas"
	outcomeMalformed  = "malformed"
	outcomeNotAcct    = "not_accounting"
	outcomeNoAddress  = "no_address"
)

// NewRADIUS prepares a server; reg may be nil.
func NewRADIUS(table *Table, nas []NAS, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*RADIUS, error) {
	for i, n := range nas {
		if !n.Prefix.IsValid() || len(n.Secret) == 0 {
			return nil, fmt.Errorf("identity: radius client %d: address and secret are required", i)
		}
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	s := &RADIUS{table: table, nas: nas, log: log, now: now,
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_radius_requests_total",
			Help: "RADIUS accounting requests received, by outcome (bad_authenticator: refused)."}, []string{"outcome"})}
	if reg != nil {
		if err := reg.Register(s.reqs); err != nil {
			return nil, fmt.Errorf("identity: radius metrics: %w", err)
		}
	}
	return s, nil
}

func (s *RADIUS) secret(from netip.Addr) []byte {
	from = from.Unmap()
	for _, n := range s.nas {
		if n.Prefix.Contains(from) {
			return n.Secret
		}
	}
	return nil
}

// Serve answers requests on pc until ctx ends.
func (s *RADIUS) Serve(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("identity: radius: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		reply, outcome := s.Handle(buf[:n], ua.AddrPort().Addr())
		s.reqs.WithLabelValues(outcome).Inc()
		if outcome != outcomeOK && outcome != outcomeNoAddress {
			s.log.Debug("radius: request refused", "from", ua, "outcome", outcome)
		}
		if reply != nil {
			pc.WriteTo(reply, from)
		}
	}
}

// Handle processes one datagram from NAS address from and returns the
// Accounting-Response to send (nil: send nothing) and the outcome.
func (s *RADIUS) Handle(b []byte, from netip.Addr) ([]byte, string) {
	secret := s.secret(from)
	if secret == nil {
		return nil, outcomeUnknownNAS
	}
	if len(b) < 20 {
		return nil, outcomeMalformed
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > len(b) || length > radius.MaxPacketLength {
		return nil, outcomeMalformed
	}
	b = b[:length]
	if radius.Code(b[0]) != radius.CodeAccountingRequest {
		return nil, outcomeNotAcct
	}
	if !radius.IsAuthenticRequest(b, secret) {
		return nil, outcomeBadAuth
	}
	p, err := radius.Parse(b, secret)
	if err != nil {
		return nil, outcomeMalformed
	}
	outcome, err := s.account(p, from)
	if err != nil {
		s.log.Debug("radius: accounting request not recorded", "from", from, "err", err)
		return nil, outcome
	}
	reply, err := p.Response(radius.CodeAccountingResponse).Encode()
	if err != nil {
		return nil, outcomeMalformed
	}
	return reply, outcome
}

// account applies one authentic Accounting-Request to the table.
func (s *RADIUS) account(p *radius.Packet, nas netip.Addr) (string, error) {
	status, err := rfc2866.AcctStatusType_Lookup(p)
	if err != nil {
		return outcomeMalformed, fmt.Errorf("Acct-Status-Type: %w", err)
	}
	now := s.now()
	if d, err := rfc2866.AcctDelayTime_Lookup(p); err == nil && d > 0 && d < 86400 {
		now = now.Add(-time.Duration(d) * time.Second)
	} else if err != nil && !errors.Is(err, radius.ErrNoAttribute) {
		return outcomeMalformed, fmt.Errorf("Acct-Delay-Time: %w", err)
	}
	nasKey := nas.Unmap().String() + "/"
	switch status {
	case rfc2866.AcctStatusType_Value_AccountingOn, rfc2866.AcctStatusType_Value_AccountingOff:
		s.table.CloseAll(FromRADIUS, nasKey, now)
		return outcomeOK, nil
	case rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate, rfc2866.AcctStatusType_Value_Stop:
	default:
		// Other status types (failed, tunnel...) carry nothing for us.
		return outcomeOK, nil
	}
	session, err := rfc2866.AcctSessionID_LookupString(p)
	if err != nil {
		return outcomeMalformed, fmt.Errorf("Acct-Session-Id: %w", err)
	}
	user, err := optString(rfc2865.UserName_LookupString(p))
	if err != nil {
		return outcomeMalformed, fmt.Errorf("User-Name: %w", err)
	}
	station, err := optString(rfc2865.CallingStationID_LookupString(p))
	if err != nil {
		return outcomeMalformed, fmt.Errorf("Calling-Station-Id: %w", err)
	}
	var addrs []netip.Addr
	for _, get := range []func(*radius.Packet) (net.IP, error){rfc2865.FramedIPAddress_Lookup, rfc6911.FramedIPv6Address_Lookup} {
		ip, err := get(p)
		if errors.Is(err, radius.ErrNoAttribute) {
			continue
		}
		a, ok := netip.AddrFromSlice(ip)
		if err != nil || !ok {
			return outcomeMalformed, fmt.Errorf("Framed-IP-Address: %v", err)
		}
		addrs = append(addrs, a.Unmap())
	}
	if len(addrs) == 0 {
		// Recorded as received (the NAS stops retrying), but nothing to
		// bind without an address.
		return outcomeNoAddress, nil
	}
	from := now
	if st, err := rfc2866.AcctSessionTime_Lookup(p); err == nil && status != rfc2866.AcctStatusType_Value_Start && st < 1<<31 {
		from = now.Add(-time.Duration(st) * time.Second)
	}
	for _, a := range addrs {
		b := Binding{Addr: a, MAC: station, User: user, From: from, Source: FromRADIUS, Key: nasKey + session}
		if status == rfc2866.AcctStatusType_Value_Stop {
			b.To = now
		}
		s.table.Put(b)
	}
	return outcomeOK, nil
}

func optString(v string, err error) (string, error) {
	if errors.Is(err, radius.ErrNoAttribute) {
		return "", nil
	}
	return v, err
}

// AccountingRequest builds an authentic Accounting-Request (the fuzz
// target and the benchmark use it; the real tests send with radclient).
func AccountingRequest(secret []byte, id byte, attrs radius.Attributes) []byte {
	p := &radius.Packet{Code: radius.CodeAccountingRequest, Identifier: id, Secret: secret, Attributes: attrs}
	b, err := p.Encode()
	if err != nil {
		return nil
	}
	return b
}
