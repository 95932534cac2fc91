package trigger

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/hotswap/hotswap/internal/azstorage"
)

// Blob triggers follow the Azure Functions host's scan-and-receipt design:
//
//   - The watched container is listed (with the pattern's literal prefix);
//     a scan that finds new blobs is followed by another at once, an idle
//     one waits 100ms doubling up to blobMaxPoll.
//   - Each version of a blob (its ETag) is processed once per host ID: a
//     receipt blob azure-webjobs-hosts/blobreceipts/<hostId>/
//     Host.Functions.<name>/<etag>/<container>/<blob> in the host's storage
//     (AzureWebJobsStorage, else the trigger's own) records it, so a restart
//     does not run it again. The host ID is the slot's (app-slot, or the
//     AzureFunctionsWebHost__hostid setting): each slot configuration keeps
//     its own receipts, as on Azure.
//   - A blob is claimed by leasing its receipt, so two listeners (the
//     retiring and the new set around a swap) do not both run it.
//   - A failed try is counted on the receipt; after blobMaxTries failures
//     the blob is reported to the webjobs-blobtrigger-poison queue and not
//     tried again.
const (
	receiptsContainer = "azure-webjobs-hosts"
	blobPoisonQueue   = "webjobs-blobtrigger-poison"
	blobMaxTries      = 5
	blobMaxPoll       = 10 * time.Second
	blobLease         = 60 * time.Second
	blobMaxSize       = 64 << 20 // Config.MaxPayload's ceiling: a blob is passed in one JSON request
	blobConcurrency   = 8
	blobStandbyPoll   = time.Second // how often a node that does not scan checks whether it leads now
)

// standbyNote is a scanner's note while another node of the cluster scans.
const standbyNote = "standing by: another node of the cluster scans this container"

// blobScanner watches one container for one function.
type blobScanner struct {
	fn       string
	hostID   string
	pattern  *azstorage.BlobPattern
	c        *container.Client // watched
	receipts *container.Client // azure-webjobs-hosts
	poison   *azqueue.QueueClient
	base64   bool // poison messages' encoding
	handle   func(ctx context.Context, b *blobItem) error
	log      func(line string)
	stats    *Stats
	ready    func() time.Duration // see poller.ready
	maxSize  int64                // largest blob passed; zero is DefaultMaxPayload
	budget   *budget              // shared payload bytes; nil is unlimited
	inputs   int64                // the function's blob inputs, read whole
	leader   func() bool          // see Config.Leader; nil: always

	mu    sync.Mutex
	done  map[string]bool      // name/etag settled: skipped without a receipt read
	busy  map[string]bool      // name/etag in flight here
	later map[string]time.Time // name/etag not settled: not tried again before
}

// blobItem is one version of a blob to process.
type blobItem struct {
	Name, ETag  string
	Path        string            // container/name
	URL         string            // the blob's URL
	Vals        map[string]string // names the pattern bound
	Length      int64
	ContentType string
	Modified    time.Time
	Content     []byte
	Metadata    map[string]string
}

func (s *blobScanner) run(pull, work context.Context, wg *sync.WaitGroup) {
	b := backoff{max: blobMaxPoll}
	sem := make(chan struct{}, blobConcurrency)
	for pull.Err() == nil {
		if s.ready != nil {
			if d := s.ready(); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-pull.Done():
					t.Stop()
					return
				case <-t.C:
				}
				continue
			}
		}
		if s.leader != nil && !s.leader() {
			// Another node of the cluster scans; look again shortly, so
			// that a takeover of the lead resumes the scans at once.
			s.stats.setNote(standbyNote)
			t := time.NewTimer(blobStandbyPoll)
			select {
			case <-pull.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		found, err := s.scan(pull, work, wg, sem)
		switch {
		case pull.Err() != nil:
			return
		case err != nil:
			if s.stats.failPoll(err) {
				s.log(fmt.Sprintf("blob function %s is failing: %v (retrying)", s.fn, err))
			}
		default:
			if s.stats.polled(found) {
				s.log(fmt.Sprintf("blob function %s scans container %s again", s.fn, s.pattern.Container()))
			}
		}
		if found > 0 {
			b.reset()
			continue
		}
		t := time.NewTimer(b.next())
		select {
		case <-pull.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// scan lists the container and dispatches the blob versions not yet
// settled; it returns how many it dispatched.
func (s *blobScanner) scan(pull, work context.Context, wg *sync.WaitGroup, sem chan struct{}) (int, error) {
	pager := s.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: ptr(s.pattern.Prefix())})
	found := 0
	for pager.More() {
		ctx, cancel := context.WithTimeout(work, storageTimeout)
		page, err := pager.NextPage(ctx)
		cancel()
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			s.stats.setNote(fmt.Sprintf("container %s does not exist yet", s.pattern.Container()))
			return 0, nil
		}
		if err != nil {
			return found, fmt.Errorf("list container %s: %w", s.pattern.Container(), azstorage.Redact(err))
		}
		s.stats.setNote("")
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil || it.Properties == nil || it.Properties.ETag == nil {
				continue
			}
			name, etag := *it.Name, string(*it.Properties.ETag)
			vals, ok := s.pattern.Match(s.pattern.Container() + "/" + name)
			if !ok {
				continue
			}
			key := name + "\x00" + etag
			s.mu.Lock()
			skip := s.done[key] || s.busy[key] || time.Now().Before(s.later[key])
			if !skip {
				s.busy[key] = true
			}
			s.mu.Unlock()
			if skip {
				continue
			}
			held := false
			select {
			case sem <- struct{}{}:
				held = true
			case <-pull.Done():
			}
			// The select may pick sem after the flip; and a node that lost
			// the lead while it waited for a slot dispatches no more: the
			// new leader scans (a blob in flight here keeps its lease).
			if pull.Err() != nil || s.leader != nil && !s.leader() {
				if held {
					<-sem
				}
				s.mu.Lock()
				delete(s.busy, key)
				s.mu.Unlock()
				return found, nil
			}
			found++
			item := &blobItem{Name: name, ETag: etag, Path: s.pattern.Container() + "/" + name, Vals: vals,
				URL: stripQuery(s.c.NewBlobClient(name).URL()), Length: deref(it.Properties.ContentLength),
				ContentType: deref(it.Properties.ContentType), Modified: deref(it.Properties.LastModified)}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				settled, retry := s.process(work, item)
				s.mu.Lock()
				delete(s.busy, key)
				delete(s.later, key)
				if settled {
					s.done[key] = true
				} else {
					s.later[key] = time.Now().Add(retry)
				}
				s.mu.Unlock()
			}()
		}
	}
	return found, nil
}

// receiptName is the receipt blob of one version of a blob.
func (s *blobScanner) receiptName(b *blobItem) string {
	return "blobreceipts/" + s.hostID + "/Host.Functions." + s.fn + "/" + strings.Trim(b.ETag, `"`) + "/" + b.Path
}

// process claims, runs and settles one blob version. It reports whether
// the version is settled (completed or poisoned, here or elsewhere), and if
// not, how long to wait before trying it again.
func (s *blobScanner) process(work context.Context, b *blobItem) (settled bool, retry time.Duration) {
	const soon, leased = 500 * time.Millisecond, blobLease / 4
	ctx, cancel := context.WithTimeout(work, storageTimeout)
	defer cancel()
	r := s.receipts.NewBlockBlobClient(s.receiptName(b))
	meta, err := s.receipt(ctx, r)
	if err != nil {
		s.stats.failPoll(azstorage.Redact(err))
		return false, soon
	}
	if meta["completed"] == "true" {
		return true, 0
	}
	lc, err := lease.NewBlobClient(r, nil)
	if err != nil {
		s.stats.failPoll(azstorage.Redact(err))
		return false, soon
	}
	if _, err := lc.AcquireLease(ctx, int32(blobLease/time.Second), nil); err != nil {
		if !bloberror.HasCode(err, bloberror.LeaseAlreadyPresent) {
			s.stats.failPoll(fmt.Errorf("lease the receipt of blob %s: %w", b.Path, azstorage.Redact(err)))
			return false, soon
		}
		return false, leased // another listener has it
	}
	// The lease is renewed while the function runs.
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(work))
	defer stopRenew()
	go func() {
		t := time.NewTicker(blobLease / 3)
		defer t.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-t.C:
				c, cancel := context.WithTimeout(renewCtx, storageTimeout)
				_, _ = lc.RenewLease(c, nil)
				cancel()
			}
		}
	}()
	// Read the receipt again under the lease: another listener may have
	// completed it between the first read and the lease.
	if meta, err = s.receipt(ctx, r); err != nil || meta["completed"] == "true" {
		s.releaseLease(work, lc)
		return err == nil, soon
	}
	tries, _ := strconv.Atoi(meta["failures"])
	got, err := s.budget.acquire(work, min(b.Length, s.maxBytes())*payloadCopies+s.inputs*s.maxBytes())
	if err != nil {
		s.releaseLease(work, lc)
		return false, soon
	}
	err = s.download(work, b)
	if err == nil {
		err = s.handle(work, b)
	}
	s.budget.release(got)
	set := map[string]*string{}
	switch {
	case err == nil:
		s.stats.succeeded()
		set["completed"] = ptr("true")
		settled = true
	case errors.Is(err, errNotRun) || work.Err() != nil:
		if nr := (*notRunError)(nil); errors.As(err, &nr) && nr.cut {
			s.log(fmt.Sprintf("blob function %s: blob %s %s; tried again, not counted as a try", s.fn, b.Path, nr.why))
		}
		s.releaseLease(work, lc) // not tried: not counted
		return false, max(soon, retryDelay(err))
	default:
		s.stats.failed(err)
		tries++
		set["failures"] = ptr(strconv.Itoa(tries))
		if tries >= blobMaxTries {
			s.log(fmt.Sprintf("blob function %s failed on blob %s (try %d of %d), reporting it to %s: %v", s.fn, b.Path, tries, blobMaxTries, blobPoisonQueue, err))
			if !s.report(work, b) {
				s.releaseLease(work, lc)
				return false, soon
			}
			s.stats.poisoned()
			set["completed"], set["poisoned"] = ptr("true"), ptr("true")
			settled = true
		} else {
			s.log(fmt.Sprintf("blob function %s failed on blob %s (try %d of %d), it is tried again: %v", s.fn, b.Path, tries, blobMaxTries, err))
		}
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(work), storageTimeout)
	defer scancel()
	_, err = r.SetMetadata(sctx, set, &blob.SetMetadataOptions{AccessConditions: &blob.AccessConditions{
		LeaseAccessConditions: &blob.LeaseAccessConditions{LeaseID: lc.LeaseID()}}})
	if err != nil {
		s.log(fmt.Sprintf("blob function %s: write the receipt of blob %s: %v", s.fn, b.Path, azstorage.Redact(err)))
		settled = false
	}
	s.releaseLease(work, lc)
	return settled, soon
}

// receipt returns the receipt's metadata (keys lower-cased), creating an
// empty receipt (and its container) when there is none.
func (s *blobScanner) receipt(ctx context.Context, r *blockblob.Client) (map[string]string, error) {
	for range 3 {
		p, err := r.GetProperties(ctx, nil)
		if err == nil {
			meta := make(map[string]string, len(p.Metadata))
			for k, v := range p.Metadata {
				meta[strings.ToLower(k)] = deref(v)
			}
			return meta, nil
		}
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			if _, err := s.receipts.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
				return nil, fmt.Errorf("create container %s: %w", receiptsContainer, azstorage.Redact(err))
			}
			continue
		}
		if !bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil, fmt.Errorf("read blob receipt: %w", azstorage.Redact(err))
		}
		_, err = r.UploadBuffer(ctx, nil, &blockblob.UploadBufferOptions{AccessConditions: &blob.AccessConditions{
			ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: ptr(azcore.ETagAny)}}})
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			if _, err := s.receipts.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
				return nil, fmt.Errorf("create container %s: %w", receiptsContainer, azstorage.Redact(err))
			}
			continue
		}
		if err != nil && !bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
			return nil, fmt.Errorf("write blob receipt: %w", azstorage.Redact(err))
		}
	}
	return nil, fmt.Errorf("read blob receipt: it keeps disappearing")
}

func (s *blobScanner) releaseLease(work context.Context, lc *lease.BlobClient) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(work), storageTimeout)
	defer cancel()
	_, _ = lc.ReleaseLease(ctx, nil)
}

// maxBytes is the largest blob the scanner passes.
func (s *blobScanner) maxBytes() int64 {
	if s.maxSize <= 0 {
		return DefaultMaxPayload
	}
	return s.maxSize
}

// download reads the blob's content and metadata, at most maxBytes.
func (s *blobScanner) download(work context.Context, b *blobItem) error {
	max := s.maxBytes()
	if b.Length > max {
		return fmt.Errorf("blob %s is %d bytes, more than the %d a blob trigger passes (the server's payload-max-body)", b.Path, b.Length, max)
	}
	ctx, cancel := context.WithTimeout(work, 5*time.Minute)
	defer cancel()
	resp, err := s.c.NewBlobClient(b.Name).DownloadStream(ctx, &blob.DownloadStreamOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: etagPtr(b.ETag)}}})
	if err != nil {
		return fmt.Errorf("read blob %s: %w", b.Path, azstorage.Redact(err))
	}
	defer resp.Body.Close()
	b.Content, err = io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return fmt.Errorf("read blob %s: %w", b.Path, azstorage.Redact(err))
	}
	if int64(len(b.Content)) > max {
		return fmt.Errorf("blob %s is more than the %d bytes a blob trigger passes (the server's payload-max-body)", b.Path, max)
	}
	b.Metadata = make(map[string]string, len(resp.Metadata))
	for k, v := range resp.Metadata {
		b.Metadata[k] = deref(v)
	}
	return nil
}

// report writes the poison message the Functions host writes for a blob
// that failed every try.
func (s *blobScanner) report(work context.Context, b *blobItem) bool {
	msg, _ := json.Marshal(map[string]string{
		"Type": "BlobTrigger", "FunctionId": "Host.Functions." + s.fn, "BlobType": "BlockBlob",
		"ContainerName": s.pattern.Container(), "BlobName": b.Name, "ETag": b.ETag,
	})
	text := string(msg)
	if s.base64 {
		text = base64.StdEncoding.EncodeToString(msg)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(work), storageTimeout)
	defer cancel()
	_, err := s.poison.EnqueueMessage(ctx, text, nil)
	if isQueueNotFound(err) {
		if _, err = s.poison.Create(ctx, nil); err == nil || isQueueExists(err) {
			_, err = s.poison.EnqueueMessage(ctx, text, nil)
		}
	}
	if err != nil {
		s.log(fmt.Sprintf("blob function %s: report blob %s to %s: %v", s.fn, b.Path, blobPoisonQueue, azstorage.Redact(err)))
		return false
	}
	return true
}

// blobData is the blob as the function gets it: its text as a JSON string,
// or, when it is not UTF-8 text, its bytes in base64.
func blobData(content []byte) json.RawMessage {
	if utf8.Valid(content) {
		return jsonString(string(content))
	}
	return jsonString(base64.StdEncoding.EncodeToString(content))
}

// hostID is the receipts' namespace of a slot, as Azure derives it: the
// AzureFunctionsWebHost__hostid setting, else the lower-cased site name
// (with "-<slot>" outside production), at most 32 characters.
func hostID(app, slot string, settings map[string]string) string {
	if v := strings.TrimSpace(settings["AzureFunctionsWebHost__hostid"]); v != "" {
		return v
	}
	id := strings.ToLower(app)
	if slot != "" && slot != "production" {
		id += "-" + strings.ToLower(slot)
	}
	if len(id) > 32 {
		id = id[:32]
	}
	return strings.TrimRight(id, "-")
}

func etagPtr(s string) *azcore.ETag { e := azcore.ETag(s); return &e }

func isQueueNotFound(err error) bool { return queueerror.HasCode(err, queueerror.QueueNotFound) }

func isQueueExists(err error) bool { return queueerror.HasCode(err, queueerror.QueueAlreadyExists) }
