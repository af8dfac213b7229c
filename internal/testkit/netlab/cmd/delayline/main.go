// Command delayline is netlab's delay line for the browser tests' lab
// (web/e2e/netns.mjs), which builds its networks with the ip command and
// has no TUN device of its own: it makes a TUN device in a namespace and
// holds each packet routed into it for a delay before writing it back.
// It prints "ready" once the device exists, and ends when its standard
// input closes (its parent's exit, or the lab's remove) or on SIGTERM.
//
//	delayline -netns NS -dev DEV -delay 80ms
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/handoff-telehealth/handoff/internal/testkit/netlab"
)

func main() {
	ns := flag.String("netns", "", "namespace to make the TUN device in (by its name under /var/run/netns)")
	dev := flag.String("dev", "", "the TUN device's name")
	delay := flag.Duration("delay", 0, "how long each packet is held")
	flag.Parse()
	if *ns == "" || *dev == "" || *delay <= 0 {
		log.Fatal("delayline: -netns, -dev and a positive -delay are required")
	}
	line, err := netlab.StartDelayLine(*ns, *dev, *delay)
	if err != nil {
		log.Fatalf("delayline: %v", err)
	}
	defer line.Close()
	fmt.Println("ready")
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-stop:
	}
}
