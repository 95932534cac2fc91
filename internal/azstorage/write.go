package azstorage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"
)

// MaxMessage is the largest queue message Azure Storage takes, counted
// after encoding.
const MaxMessage = 64 << 10

// QueueMessages turns a queue output binding's value into message texts the
// way the Functions host does: a JSON string is its text, an array is one
// message per element (a string element its text, any other its JSON), any
// other value (object, number, boolean) its JSON; null writes nothing.
func QueueMessages(value json.RawMessage) ([]string, error) {
	v := bytes.TrimSpace(value)
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	if v[0] != '[' {
		m, err := messageText(v)
		if err != nil {
			return nil, err
		}
		return []string{m}, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		return nil, invalid("queue output is not valid JSON: %v", err)
	}
	msgs := make([]string, 0, len(elems))
	for _, e := range elems {
		e = bytes.TrimSpace(e)
		if string(e) == "null" {
			continue
		}
		m, err := messageText(e)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func messageText(v []byte) (string, error) {
	if !json.Valid(v) {
		return "", invalid("queue output is not valid JSON")
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", invalid("queue output is not valid JSON: %v", err)
		}
		return s, nil
	}
	return string(v), nil
}

// WriteQueue writes a queue output binding's value (see QueueMessages) to
// the queue, creating the queue if it does not exist, as the Functions host
// does. With b64 each message is sent base64-encoded (host.json
// extensions.queues.messageEncoding "base64", the default), else as is
// ("none"). Messages are checked against MaxMessage before any is sent;
// they are then sent one by one, so a failure part way leaves the earlier
// ones written.
func WriteQueue(ctx context.Context, acct Account, queue string, value json.RawMessage, b64 bool) error {
	msgs, err := QueueMessages(value)
	if err != nil {
		return fmt.Errorf("queue %s: %w", queue, err)
	}
	for i, m := range msgs {
		if b64 {
			msgs[i] = base64.StdEncoding.EncodeToString([]byte(m))
		}
		if n := len(msgs[i]); n > MaxMessage {
			return invalid("queue %s: message %d is %d bytes encoded, over the %d-byte limit of Azure queues", queue, i+1, n, MaxMessage)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	q, err := acct.Queue(queue)
	if err != nil {
		return err
	}
	created := false
	for i := 0; i < len(msgs); i++ {
		_, err := q.EnqueueMessage(ctx, msgs[i], nil)
		if err != nil && !created && queueerror.HasCode(err, queueerror.QueueNotFound) {
			if _, err := q.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
				return storageErr("create queue "+queue+" at "+acct.QueueEndpoint, err)
			}
			created = true
			i--
			continue
		}
		if err != nil {
			return storageErr("enqueue to "+queue+" at "+acct.QueueEndpoint, err)
		}
	}
	return nil
}

// BlobBytes turns a blob output binding's value into the blob's content: a
// JSON string is its text, any other value its JSON. ok is false for null
// (or an empty value), which writes no blob.
func BlobBytes(value json.RawMessage) (data []byte, ok bool, err error) {
	v := bytes.TrimSpace(value)
	if len(v) == 0 || string(v) == "null" {
		return nil, false, nil
	}
	if !json.Valid(v) {
		return nil, false, invalid("blob output is not valid JSON")
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, false, invalid("blob output is not valid JSON: %v", err)
		}
		return []byte(s), true, nil
	}
	return v, true, nil
}

// SplitBlobPath splits "container/name/with/slashes" into the container and
// the blob name, checking both.
func SplitBlobPath(path string) (containerName, blob string, err error) {
	c, b, ok := strings.Cut(path, "/")
	if !ok || b == "" {
		return "", "", invalid("blob path %q: want container/name", clipName(path))
	}
	if err := checkName("container", c); err != nil {
		return "", "", fmt.Errorf("blob path %q: %w", clipName(path), err)
	}
	if len(b) > 1024 {
		return "", "", invalid("blob path %q: a blob name is at most 1024 characters", clipName(path))
	}
	return c, b, nil
}

// WriteBlob writes a blob output binding's value (see BlobBytes) to path,
// "container/name", replacing the blob if it exists and creating the
// container if it does not, as the Functions host does.
func WriteBlob(ctx context.Context, acct Account, path string, value json.RawMessage) error {
	data, ok, err := BlobBytes(value)
	if err != nil {
		return fmt.Errorf("blob %s: %w", clipName(path), err)
	}
	if !ok {
		return nil
	}
	cname, name, err := SplitBlobPath(path)
	if err != nil {
		return err
	}
	c, err := acct.Container(cname)
	if err != nil {
		return err
	}
	bb := c.NewBlockBlobClient(name)
	_, err = bb.UploadBuffer(ctx, data, nil)
	if err != nil && bloberror.HasCode(err, bloberror.ContainerNotFound) {
		if _, err := c.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			return storageErr("create container "+cname+" at "+acct.BlobEndpoint, err)
		}
		_, err = bb.UploadBuffer(ctx, data, nil)
	}
	return storageErr("upload blob "+path+" to "+acct.BlobEndpoint, err)
}
