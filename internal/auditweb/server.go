package auditweb

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
)

//go:embed static
var static embed.FS

// Keep is how many of the newest records the page is given and the server
// holds.
const Keep = 5000

// Options configure a Server.
type Options struct {
	// Files are the log and its rotated backups, any order; the newest
	// (the one the proxy writes) is followed for new records.
	Files []string
	// Verify is how the chain is checked (the audit key, a checkpoint).
	Verify audit.VerifyOptions
	// Poll is how often the log is looked at for new lines; default 200ms.
	Poll time.Duration
	// Token is the secret every request must carry (see guard.go); empty
	// makes a random one, which Token returns. A token given must be at
	// least minTokenLen (16) characters.
	Token string
	// Hosts are the names the Host header may carry (ListenHosts of the
	// listener, plus names the operator added); empty means the loopback
	// names only.
	Hosts []string
}

// Server follows a log and serves the page over it. Create it with New,
// start following with Run.
type Server struct {
	o       Options
	current string // the file followed

	mu      sync.Mutex
	records []json.RawMessage // newest last, at most Keep
	subs    map[chan []byte]struct{}
	state   VerifyState
	offset  int64
	ino     uint64
	partial []byte
}

// VerifyState is the chain's state as the page shows it.
type VerifyState struct {
	OK      bool      `json:"ok"`
	Keyed   bool      `json:"keyed"`
	Records int       `json:"records"`
	Detail  string    `json:"detail"`
	Checked time.Time `json:"checked"`
}

// New loads what the files hold so far.
func New(o Options) (*Server, error) {
	if len(o.Files) == 0 {
		return nil, errors.New("auditweb: no audit file to serve")
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	switch {
	case o.Token == "":
		o.Token = NewToken()
	case len(o.Token) < minTokenLen:
		return nil, fmt.Errorf("auditweb: the token is %d characters, want at least %d (anyone who can reach the page could guess a short one)", len(o.Token), minTokenLen)
	}
	order := audit.ChainOrder(o.Files)
	s := &Server{o: o, current: current(order), subs: map[chan []byte]struct{}{}}
	for _, name := range order {
		if name == s.current {
			continue
		}
		if err := s.readWhole(name); err != nil {
			return nil, err
		}
	}
	if err := s.follow(); err != nil {
		return nil, err
	}
	s.verify()
	return s, nil
}

// current is the file the proxy writes: the one without a rotation suffix
// (audit.jsonl, not audit.jsonl.1), else the newest.
func current(order []string) string {
	for _, n := range order {
		if !rotated.MatchString(n) {
			return n
		}
	}
	return order[len(order)-1]
}

var rotated = regexp.MustCompile(`\.[0-9]+$`)

// readWhole adds every record of a rotated file.
func (s *Server) readWhole(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("auditweb: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.add(sc.Bytes())
	}
	return sc.Err()
}

// follow reads what was appended to the followed file since the last look
// (from the start after a rotation) and sends each new record to the
// page's streams.
func (s *Server) follow() error {
	f, err := os.Open(s.current)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not written yet; the proxy creates it
	}
	if err != nil {
		return fmt.Errorf("auditweb: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	ino := inode(fi)
	s.mu.Lock()
	if ino != s.ino || fi.Size() < s.offset {
		// Rotated (or truncated): the new file starts over.
		s.ino, s.offset, s.partial = ino, 0, nil
	}
	off := s.offset
	s.mu.Unlock()
	if fi.Size() == off {
		return nil
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	chunk, err := io.ReadAll(io.LimitReader(f, fi.Size()-off))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset = off + int64(len(chunk))
	data := append(s.partial, chunk...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if rec := s.addLocked(data[:i]); rec != nil {
			for ch := range s.subs {
				select {
				case ch <- rec:
				default: // a page that cannot keep up misses records; it reloads to catch up
				}
			}
		}
		data = data[i+1:]
	}
	s.partial = append([]byte(nil), data...)
	return nil
}

func (s *Server) add(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(line)
}

// addLocked keeps one line if it is a record; it returns the line.
func (s *Server) addLocked(line []byte) []byte {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || !json.Valid(line) {
		return nil
	}
	rec := append([]byte(nil), line...)
	s.records = append(s.records, rec)
	if len(s.records) > Keep {
		s.records = append(s.records[:0:0], s.records[len(s.records)-Keep:]...)
	}
	return rec
}

// verify checks the chain of all the files and keeps the result.
func (s *Server) verify() {
	st := VerifyState{Keyed: s.o.Verify.Key != nil, Checked: time.Now().UTC()}
	reports, err := audit.Verify(s.o.Files, s.o.Verify)
	for _, r := range reports {
		st.Records += r.Records
	}
	if err != nil {
		st.Detail = err.Error()
	} else {
		st.OK = true
		st.Detail = fmt.Sprintf("%d records, chain ok", st.Records)
		if !st.Keyed {
			st.Detail += " (unkeyed: give --key to prove it was not rewritten)"
		}
	}
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

// Run follows the log until stop is closed, verifying the chain again a
// little after each change.
func (s *Server) Run(stop <-chan struct{}) {
	tick := time.NewTicker(s.o.Poll)
	defer tick.Stop()
	var lastVerify time.Time
	dirty := false
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		before := s.seen()
		_ = s.follow()
		if s.seen() != before {
			dirty = true
		}
		if dirty && time.Since(lastVerify) > time.Second {
			s.verify()
			lastVerify, dirty = time.Now(), false
			s.broadcastState()
		}
	}
}

func (s *Server) seen() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset
}

func (s *Server) broadcastState() {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(s.state)
	msg := append([]byte("event: verify\ndata: "), b...)
	for ch := range s.subs {
		select {
		case ch <- msg:
		default:
		}
	}
}

// Token is the secret the page's URL carries.
func (s *Server) Token() string { return s.o.Token }

// Handler is the page and its API, behind the access checks of guard.go.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	page, _ := fs.Sub(static, "static")
	mux.Handle("GET /", http.FileServerFS(page))
	mux.HandleFunc("GET /api/records", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		list := append([]json.RawMessage(nil), s.records...)
		st := s.state
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Records []json.RawMessage `json:"records"`
			Verify  VerifyState       `json:"verify"`
		}{list, st})
	})
	mux.HandleFunc("GET /api/events", s.events)
	return newGuard(s.o.Hosts, s.o.Token, mux)
}

// events streams new records (and verification states) as server-sent
// events until the page goes away.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan []byte, 256)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, ": connected\n\n")
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg := <-ch:
			if !bytes.HasPrefix(msg, []byte("event: ")) {
				msg = append([]byte("data: "), msg...)
			}
			if _, err := w.Write(append(msg, '\n', '\n')); err != nil {
				return
			}
			flusher.Flush()
		case <-keepalive.C:
			_, _ = io.WriteString(w, ": keepalive\n\n")
			flusher.Flush()
		}
	}
}
