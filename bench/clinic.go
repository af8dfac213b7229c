package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/store"
)

// Clinic is the demo clinic Riverside under load: two providers signed in
// with their dashboards' streams open, and patients waiting in four rooms,
// each with its page's stream open. Patients move between Dr. Lee's rooms
// and Dr. Patel's, each transfer sent by the provider of the room the
// patient waits in.
type Clinic struct {
	client   *Client
	arrivals *Arrivals
	ctx      context.Context // streams live as long as it
	rooms    []clinicRoom
	tokens   []string // provider tokens, by clinicRoom.provider

	mu      sync.Mutex
	waiting int
	free    chan *Patient // waiting patients no transfer is moving now
}

type clinicRoom struct {
	slug, id string
	provider int // who acts for it
}

// clinicProviders and their rooms: each can act for the two it lists.
var clinicProviders = []struct {
	email string
	rooms []string
}{
	{"dr.lee@riverside.example", []string{"dr-lee", "riverside-reception"}},
	{"dr.patel@riverside.example", []string{"dr-patel", "riverside-urgent"}},
}

// OpenClinic signs the providers in and opens their streams.
func OpenClinic(ctx context.Context, c *Client) (*Clinic, error) {
	cl := &Clinic{client: c, arrivals: NewArrivals(), ctx: ctx, free: make(chan *Patient, 1<<16)}
	for i, p := range clinicProviders {
		token, err := c.Login(ctx, p.email, store.DemoPassword)
		if err != nil {
			return nil, err
		}
		cl.tokens = append(cl.tokens, token)
		ids, err := c.roomIDs(ctx, token)
		if err != nil {
			return nil, err
		}
		for _, slug := range p.rooms {
			if ids[slug] == "" {
				return nil, fmt.Errorf("demo room %s not found", slug)
			}
			cl.rooms = append(cl.rooms, clinicRoom{slug: slug, id: ids[slug], provider: i})
		}
		if err := c.Watch(ctx, token, false, cl.arrivals); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

func (c *Client) roomIDs(ctx context.Context, token string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/rooms", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.calls.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Rooms []struct{ ID, Slug string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, r := range out.Rooms {
		ids[r.Slug] = r.ID
	}
	return ids, nil
}

// Waiting is how many patients the clinic has checked in.
func (cl *Clinic) Waiting() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.waiting
}

// checkIn checks a patient into room i; answered is called when the API
// has answered, before the patient's page opens its stream.
func (cl *Clinic) checkIn(ctx context.Context, i int, answered func()) (*Patient, error) {
	p, err := cl.client.CheckIn(ctx, cl.rooms[i].slug)
	if err != nil {
		return nil, err
	}
	answered()
	p.Room = i
	if err := cl.client.Watch(cl.ctx, p.Token, true, cl.arrivals); err != nil {
		return nil, err
	}
	cl.mu.Lock()
	cl.waiting++
	cl.mu.Unlock()
	return &p, nil
}

// Grow checks patients in, concurrency at a time, until total are waiting.
func (cl *Clinic) Grow(ctx context.Context, total, concurrency int) error {
	var next atomic.Int64
	next.Store(int64(cl.Waiting()))
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) || ctx.Err() != nil {
					return
				}
				p, err := cl.checkIn(ctx, int(i)%len(cl.rooms), func() {})
				if err != nil {
					errs <- err
					return
				}
				cl.free <- p
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Result is one open-loop run: latencies from each operation's scheduled
// start, and what failed.
type Result struct {
	Answer  Stats // the request's answer
	Seen    Stats // the event at the stream that waits for it
	Seen2   Stats // a second stream's event (transfers: the receiving room's card)
	Errors  int
	FirstOf string // the first error, to say what broke
	Elapsed time.Duration
}

// Throughput is operations completed per second of the run.
func (r Result) Throughput() float64 {
	return float64(r.Seen.N) / r.Elapsed.Seconds()
}

type collector struct {
	mu                  sync.Mutex
	answer, seen, seen2 []time.Duration
	errors              int
	first               string
}

func (c *collector) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors++
	if c.first == "" {
		c.first = err.Error()
	}
}

func (c *collector) add(series *[]time.Duration, d time.Duration) {
	c.mu.Lock()
	*series = append(*series, d)
	c.mu.Unlock()
}

func (c *collector) result(elapsed time.Duration) Result {
	return Result{Answer: Summarize(c.answer), Seen: Summarize(c.seen), Seen2: Summarize(c.seen2),
		Errors: c.errors, FirstOf: c.first, Elapsed: elapsed}
}

// seenTimeout bounds the wait for an event; a transfer not seen by then
// counts as an error, not as a latency.
const seenTimeout = 30 * time.Second

// Transfers moves n waiting patients at rate per second, open loop: each
// from the room it waits in to one of the other provider's rooms. Seen is
// the patient's "You have been transferred…", Seen2 the receiving room's
// card.
func (cl *Clinic) Transfers(ctx context.Context, rate float64, n int) Result {
	var col collector
	start := time.Now()
	OpenLoop(ctx, rate, n, func(i int, scheduled time.Time) {
		var p *Patient
		select {
		case p = <-cl.free:
		default:
			col.fail(fmt.Errorf("no waiting patient free to transfer: every one is being moved"))
			return
		}
		defer func() { cl.free <- p }()
		from := cl.rooms[p.Room]
		to := cl.targetFor(p.Room, i)
		cl.arrivals.Forget(PatientTransferred, p.VisitID)
		cl.arrivals.Forget(CardTransferred, p.VisitID)
		err := cl.client.Post(ctx, "/visits/"+p.VisitID+"/transfer", cl.tokens[from.provider], uuid.NewString(),
			map[string]string{"targetRoomId": cl.rooms[to].id}, nil)
		if err != nil {
			col.fail(err)
			return
		}
		col.add(&col.answer, time.Since(scheduled))
		p.Room = to
		patientAt, ok1 := cl.arrivals.Wait(ctx, PatientTransferred, p.VisitID, seenTimeout)
		cardAt, ok2 := cl.arrivals.Wait(ctx, CardTransferred, p.VisitID, seenTimeout)
		if !ok1 || !ok2 {
			col.fail(fmt.Errorf("transfer of a patient not seen within %s (patient %t, card %t)", seenTimeout, ok1, ok2))
			return
		}
		col.add(&col.seen, patientAt.Sub(scheduled))
		col.add(&col.seen2, cardAt.Sub(scheduled))
	})
	return col.result(time.Since(start))
}

// targetFor picks a room of the other provider, alternating between its two.
func (cl *Clinic) targetFor(from, i int) int {
	var others []int
	for j, r := range cl.rooms {
		if r.provider != cl.rooms[from].provider {
			others = append(others, j)
		}
	}
	return others[i%len(others)]
}

// CheckIns checks n new patients in at rate per second, open loop, across
// the rooms. Seen is the provider's new card.
func (cl *Clinic) CheckIns(ctx context.Context, rate float64, n int) Result {
	var col collector
	start := time.Now()
	OpenLoop(ctx, rate, n, func(i int, scheduled time.Time) {
		p, err := cl.checkIn(ctx, i%len(cl.rooms), func() { col.add(&col.answer, time.Since(scheduled)) })
		if err != nil {
			col.fail(err)
			return
		}
		at, ok := cl.arrivals.Wait(ctx, CardCheckedIn, p.VisitID, seenTimeout)
		if !ok {
			col.fail(fmt.Errorf("check-in not on the provider's dashboard within %s", seenTimeout))
		} else {
			col.add(&col.seen, at.Sub(scheduled))
		}
		cl.free <- p
	})
	return col.result(time.Since(start))
}
