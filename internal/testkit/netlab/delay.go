package netlab

import (
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DelayDownlink makes everything the router forwards to ns wait ms first,
// as a long mobile or satellite path does. tc's netem is what one would
// use, but not every kernel has it (this machine's has not); this is a
// delay line of the kernel's own parts and a few lines of Go: the router
// routes ns's traffic into a TUN device, the lab holds each packet ms and
// writes it back, and a rule routes what comes out of the TUN on to ns's
// cable — where LimitDownlink's token bucket and LoseDownlink still apply,
// after the delay. Call it once per host, before or after a limit.
func (l *Lab) DelayDownlink(ns string, ms int) {
	l.t.Helper()
	l.mu.Lock()
	l.links++
	n := l.links
	subnet, ok := l.subnets[ns]
	l.mu.Unlock()
	if !ok {
		l.t.Fatalf("netlab: %s has no cable to the router", ns)
	}
	dev := fmt.Sprintf("%sd%d", l.prefix, n)
	line, err := StartDelayLine(l.Router, dev, time.Duration(ms)*time.Millisecond)
	if err != nil {
		l.t.Fatalf("netlab: a TUN device in the router: %v", err)
	}
	l.mu.Lock()
	l.delays = append(l.delays, line)
	l.mu.Unlock()

	table := fmt.Sprint(100 + n)
	cidr := subnet + ".0/24"
	l.In(l.Router, "ip", "link", "set", dev, "up")
	// The router checks no source against the TUN's routes (it has none).
	l.In(l.Router, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf."+dev+".rp_filter=0")
	// Out of the TUN: on to the host's cable. Into it: whatever is for the host.
	l.In(l.Router, "ip", "route", "add", cidr, "dev", l.downlink(ns), "table", table)
	l.In(l.Router, "ip", "rule", "add", "pref", fmt.Sprint(1000+2*n), "iif", dev, "lookup", table)
	l.In(l.Router, "ip", "route", "add", cidr, "dev", dev, "table", fmt.Sprint(200+n))
	l.In(l.Router, "ip", "rule", "add", "pref", fmt.Sprint(1001+2*n), "to", cidr, "lookup", fmt.Sprint(200+n))
}

// delayQueue bounds a delay line: what arrives while it holds this many
// packets is dropped (at 100 Mbit/s and 80 ms, about 700 full packets).
const delayQueue = 4096

type delayed struct {
	due time.Time
	pkt []byte
}

// StartDelayLine makes a TUN device dev in namespace ns and holds each
// packet routed into it for delay before writing it back out, in the order
// they came. What is routed where is the caller's (DelayDownlink's rules;
// the browser tests' lab runs it as cmd/delayline). Close ends it.
func StartDelayLine(ns, dev string, delay time.Duration) (*DelayLine, error) {
	tun, err := openTUN(ns, dev)
	if err != nil {
		return nil, err
	}
	line := &DelayLine{tun: tun, delay: delay, queue: make(chan delayed, delayQueue)}
	go line.read()
	go line.write()
	return line, nil
}

// DelayLine holds each packet read from its TUN device for delay, then
// writes it back, in the order they came.
type DelayLine struct {
	tun   *os.File
	delay time.Duration
	queue chan delayed
}

func (d *DelayLine) read() {
	for {
		buf := make([]byte, 2048)
		n, err := d.tun.Read(buf)
		if err != nil {
			close(d.queue) // only the reader sends: it ends the writer
			return
		}
		select {
		case d.queue <- delayed{due: time.Now().Add(d.delay), pkt: buf[:n]}:
		default: // the line is full: the packet is lost, as in a full queue
		}
	}
}

func (d *DelayLine) write() {
	for p := range d.queue {
		time.Sleep(time.Until(p.due))
		if _, err := d.tun.Write(p.pkt); err != nil {
			return
		}
	}
}

// Close ends the line (and its device): the read fails, and the writer
// drains and stops.
func (d *DelayLine) Close() { _ = d.tun.Close() }

// InNamespace runs fn on a thread inside namespace ns: what fn creates
// there (a socket, a device) belongs to ns and stays usable from any
// goroutine after it returns.
func InNamespace(ns string, fn func() error) error {
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer home.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", ns, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is still in ns: it must run nothing else, so it stays
		// locked and ends with this goroutine.
		return fmt.Errorf("return from %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// openTUN makes a TUN device named dev in namespace ns and opens it.
func openTUN(ns, dev string) (f *os.File, err error) {
	err = InNamespace(ns, func() error {
		f, err = createTUN(dev)
		return err
	})
	return f, err
}

func createTUN(dev string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("/dev/net/tun: %w", err)
	}
	// Non-blocking, so the runtime's poller reads it and Close ends a read.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:unix.IFNAMSIZ-1], dev)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TUN | unix.IFF_NO_PI
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TUNSETIFF), uintptr(unsafe.Pointer(&req[0]))); e != 0 {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", dev, e)
	}
	return os.NewFile(uintptr(fd), dev), nil
}
