package enforce

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// match is one condition or statement of a rule: the nft syntax a human reads
// and the expressions the kernel runs, built side by side so that --dry-run
// shows what is installed.
type match struct {
	text  string
	exprs []expr.Any
}

// ifname pads an interface name the way the kernel stores it (IFNAMSIZ bytes).
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// oifname matches packets leaving through the interface name; iifname those
// arriving through it.
func oifname(name string) match {
	return metaEq(expr.MetaKeyOIFNAME, ifname(name), fmt.Sprintf("oifname %q", name))
}

func iifname(name string) match {
	return metaEq(expr.MetaKeyIIFNAME, ifname(name), fmt.Sprintf("iifname %q", name))
}

func metaEq(key expr.MetaKey, data []byte, text string) match {
	return match{text: text, exprs: []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}}
}

// ctStateEstablishedRelated matches replies to connections already allowed,
// and the ICMP errors that belong to them.
func ctStateEstablishedRelated() match {
	return match{text: "ct state established,related", exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0),
		},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}}
}

// daddr matches the destination address; in an inet table the address family
// must be tested first, as nft does for "ip daddr".
func daddr(a netip.Addr) match {
	if a.Is4() {
		return match{text: "ip daddr " + a.String(), exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
		}}
	}
	return match{text: "ip6 daddr " + a.String(), exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
	}}
}

// dport matches the transport protocol and its destination port.
func dport(proto byte, port uint16) match {
	name := map[byte]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp"}[proto]
	return match{text: fmt.Sprintf("%s dport %d", name, port), exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}}
}

// icmpv6Type matches one ICMPv6 message type (name is nft's name for it).
func icmpv6Type(typ byte, name string) match {
	return match{text: "icmpv6 type " + name, exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
	}}
}

// logLimited logs with prefix at most rate packets a second, so a flood of
// refused packets cannot flood the kernel log.
func logLimited(prefix string, rate uint64, burst uint32) match {
	return match{
		text: fmt.Sprintf("limit rate %d/second burst %d packets log prefix %q", rate, burst, prefix),
		exprs: []expr.Any{
			&expr.Limit{Type: expr.LimitTypePkts, Rate: rate, Unit: expr.LimitTimeSecond, Burst: burst},
			&expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(prefix)},
		},
	}
}

func accept() match {
	return match{text: "accept", exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}}
}

// countedDrop drops and counts, so `nft list table inet slapenir` shows how
// much was refused even when the log is rate-limited.
func countedDrop() match {
	return match{text: "counter drop", exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}}
}
