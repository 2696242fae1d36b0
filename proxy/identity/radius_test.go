package identity

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

func startRADIUS(t *testing.T, now func() time.Time) (*Table, *RADIUS, string) {
	t.Helper()
	tb := NewTable()
	s, err := NewRADIUS(tb, []NAS{{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte("s3cret-wifi")}}, nil, prometheus.NewRegistry(), now)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, pc); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return tb, s, pc.LocalAddr().String()
}

// radclient sends one accounting request with Debian's radclient and
// reports whether an Accounting-Response came back.
func radclient(t *testing.T, addr, secret, attrs string) bool {
	t.Helper()
	if _, err := exec.LookPath("radclient"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must have radclient (freeradius-utils)")
		}
		t.Skip("radclient (freeradius-utils) is not installed")
	}
	cmd := exec.Command("radclient", "-r", "1", "-t", "2", addr, "acct", secret)
	cmd.Stdin = strings.NewReader(attrs + "\n")
	out, err := cmd.CombinedOutput()
	return err == nil && strings.Contains(string(out), "Accounting-Response")
}

func TestRADIUSWithRadclient(t *testing.T) {
	// The test moves the server's clock between requests.
	var offset atomic.Int64
	now := func() time.Time { return t13.Add(time.Duration(offset.Load())) }
	tb, s, addr := startRADIUS(t, now)
	a := netip.MustParseAddr("10.10.0.10")
	start := "User-Name=eleve.dupont,Acct-Status-Type=Start,Acct-Session-Id=wifi-42,Framed-IP-Address=10.10.0.10,Calling-Station-Id=02-00-5E-00-00-10:college-wifi"
	if !radclient(t, addr, "s3cret-wifi", start) {
		t.Fatal("no Accounting-Response to a Start")
	}
	if mac, user := tb.Lookup(a, now().Add(time.Minute)); mac != "02:00:5e:00:00:10" || user != "eleve.dupont" {
		t.Fatalf("after Start: %q %q", mac, user)
	}
	offset.Store(int64(10 * time.Minute))
	if !radclient(t, addr, "s3cret-wifi", "User-Name=eleve.dupont,Acct-Status-Type=Interim-Update,Acct-Session-Id=wifi-42,Framed-IP-Address=10.10.0.10,Calling-Station-Id=02-00-5E-00-00-10,Acct-Session-Time=600") {
		t.Fatal("no Accounting-Response to an Interim-Update")
	}
	offset.Store(int64(20 * time.Minute))
	if !radclient(t, addr, "s3cret-wifi", "User-Name=eleve.dupont,Acct-Status-Type=Stop,Acct-Session-Id=wifi-42,Framed-IP-Address=10.10.0.10,Calling-Station-Id=02-00-5E-00-00-10,Acct-Session-Time=1200") {
		t.Fatal("no Accounting-Response to a Stop")
	}
	if _, user := tb.Lookup(a, t13.Add(15*time.Minute)); user != "eleve.dupont" {
		t.Fatalf("during the session: user %q", user)
	}
	if _, user := tb.Lookup(a, t13.Add(time.Hour)); user != "" {
		t.Fatalf("after Stop: user %q", user)
	}
	// A wrong secret: no answer, nothing learnt, counted.
	if radclient(t, addr, "wrong", strings.ReplaceAll(start, "10.10.0.10", "10.10.0.11")) {
		t.Fatal("a request with a bad authenticator was answered")
	}
	if _, user := tb.Lookup(netip.MustParseAddr("10.10.0.11"), now()); user != "" {
		t.Fatalf("a forged request taught the table %q", user)
	}
	if got := testutil.ToFloat64(s.reqs.WithLabelValues(outcomeBadAuth)); got < 1 {
		t.Fatalf("bad authenticators counted %v", got)
	}
}

func TestRADIUSRefusals(t *testing.T) {
	tb := NewTable()
	s, err := NewRADIUS(tb, []NAS{{Prefix: netip.MustParsePrefix("10.20.0.2/32"), Secret: []byte("k")}}, nil, nil, func() time.Time { return t13 })
	if err != nil {
		t.Fatal(err)
	}
	nas := netip.MustParseAddr("10.20.0.2")
	p := &radius.Packet{}
	rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_SetString(p, "s")
	rfc2865.FramedIPAddress_Set(p, net.IPv4(10, 10, 0, 10))
	rfc2865.UserName_SetString(p, "eleve.dupont")
	req := AccountingRequest([]byte("k"), 7, p.Attributes)
	noStatus := AccountingRequest([]byte("k"), 8, radius.Attributes{})
	badIP := &radius.Packet{}
	rfc2866.AcctStatusType_Set(badIP, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_SetString(badIP, "s")
	badIP.Add(rfc2865.FramedIPAddress_Type, radius.Attribute{1, 2, 3})
	for _, tc := range []struct {
		name    string
		b       []byte
		from    netip.Addr
		outcome string
	}{
		{"unknown NAS", req, netip.MustParseAddr("10.20.0.3"), outcomeUnknownNAS},
		{"short", req[:10], nas, outcomeMalformed},
		{"length beyond the datagram", append([]byte{4, 1, 0xff, 0xff}, req[4:]...), nas, outcomeMalformed},
		{"access request", append([]byte{1}, req[1:]...), nas, outcomeNotAcct},
		{"tampered", append(append([]byte(nil), req[:len(req)-1]...), req[len(req)-1]^1), nas, outcomeBadAuth},
		{"no status type", noStatus, nas, outcomeMalformed},
		{"bad address", AccountingRequest([]byte("k"), 9, badIP.Attributes), nas, outcomeMalformed},
		{"good", req, nas, outcomeOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, outcome := s.Handle(tc.b, tc.from)
			if outcome != tc.outcome {
				t.Fatalf("outcome %s, want %s", outcome, tc.outcome)
			}
			if (reply != nil) != (tc.outcome == outcomeOK) {
				t.Fatalf("reply %x for outcome %s", reply, outcome)
			}
			if reply != nil && !radius.IsAuthenticResponse(reply, tc.b, []byte("k")) {
				t.Fatal("the Accounting-Response is not authentic")
			}
		})
	}
	if _, user := tb.Lookup(netip.MustParseAddr("10.10.0.10"), t13); user != "eleve.dupont" {
		t.Fatalf("user %q", user)
	}
}

// FuzzRADIUSAttributes feeds authentic requests whose attributes are
// arbitrary bytes: whatever they hold, handling never panics, and a
// request is answered only when it was recorded.
func FuzzRADIUSAttributes(f *testing.F) {
	p := &radius.Packet{}
	rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_SetString(p, "s")
	rfc2865.FramedIPAddress_Set(p, net.IPv4(10, 10, 0, 10))
	rfc2865.CallingStationID_SetString(p, "02-00-5E-00-00-10")
	b := AccountingRequest([]byte("k"), 1, p.Attributes)
	f.Add(b[20:])
	f.Add([]byte{40, 6, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, attrs []byte) {
		if len(attrs) > radius.MaxPacketLength-20 {
			return
		}
		tb := NewTable()
		s, _ := NewRADIUS(tb, []NAS{{Prefix: netip.MustParsePrefix("10.20.0.2/32"), Secret: []byte("k")}}, nil, nil, func() time.Time { return t13 })
		raw := make([]byte, 20, 20+len(attrs))
		raw[0], raw[1] = byte(radius.CodeAccountingRequest), 1
		raw = append(raw, attrs...)
		raw[2], raw[3] = byte(len(raw)>>8), byte(len(raw))
		// Sign it as a NAS would, so that the attributes are reached.
		pk, err := radius.Parse(raw, []byte("k"))
		if err != nil {
			return
		}
		signed, err := pk.Encode()
		if err != nil {
			return
		}
		reply, outcome := s.Handle(signed, netip.MustParseAddr("10.20.0.2"))
		if outcome == outcomeBadAuth {
			t.Fatalf("a correctly signed request was refused: %x", signed)
		}
		if reply != nil && outcome != outcomeOK && outcome != outcomeNoAddress {
			t.Fatalf("answered a request with outcome %s", outcome)
		}
	})
}
