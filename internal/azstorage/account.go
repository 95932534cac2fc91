// Package azstorage connects functions to Azure Storage queues and blobs:
// it parses connection strings and app settings as the Azure Functions host
// does, builds clients with the Azure SDK for Go, writes queue and blob
// output bindings, and evaluates blob path binding expressions.
//
// It works against Azure Storage and Azurite alike; the tests use Azurite
// (see internal/azurite).
package azstorage

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"

	"github.com/hotswap/hotswap"
)

// DefaultConnection is the app setting a binding without a `connection`
// property uses, as on Azure.
const DefaultConnection = "AzureWebJobsStorage"

// Azurite's well-known development account, which UseDevelopmentStorage=true
// names. The key is public.
const (
	devAccount = "devstoreaccount1"
	devKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Account is a storage account's endpoints and credential: a shared key, a
// shared access signature, or neither (anonymous access). Its String method
// leaves the secrets out, so an Account can be logged.
type Account struct {
	Name string // account name; "" when only SAS or anonymous endpoints are known
	Key  string // base64 shared key; "" when SAS or anonymous
	SAS  string // shared access signature query, without '?'; "" when Key or anonymous

	// BlobEndpoint and QueueEndpoint are the service URLs without a
	// trailing slash, e.g. https://acct.queue.core.windows.net or
	// http://127.0.0.1:10001/devstoreaccount1; "" when the account has
	// no such service configured.
	BlobEndpoint  string
	QueueEndpoint string
}

// String describes the account without its key or signature.
func (a Account) String() string {
	auth := "anonymous"
	switch {
	case a.Key != "":
		auth = "shared key"
	case a.SAS != "":
		auth = "SAS"
	}
	return "account " + a.Name + " (" + auth + ") blob=" + a.BlobEndpoint + " queue=" + a.QueueEndpoint
}

// GoString is String, so %#v cannot print the key either.
func (a Account) GoString() string { return a.String() }

// connKeys are the connection string keys, lowercased, that
// ParseConnectionString knows; the ones it does not use (table, file and
// secondary endpoints) are accepted and ignored.
var connKeys = map[string]string{
	"defaultendpointsprotocol":   "DefaultEndpointsProtocol",
	"accountname":                "AccountName",
	"accountkey":                 "AccountKey",
	"endpointsuffix":             "EndpointSuffix",
	"blobendpoint":               "BlobEndpoint",
	"queueendpoint":              "QueueEndpoint",
	"tableendpoint":              "TableEndpoint",
	"fileendpoint":               "FileEndpoint",
	"blobsecondaryendpoint":      "BlobSecondaryEndpoint",
	"queuesecondaryendpoint":     "QueueSecondaryEndpoint",
	"tablesecondaryendpoint":     "TableSecondaryEndpoint",
	"filesecondaryendpoint":      "FileSecondaryEndpoint",
	"sharedaccesssignature":      "SharedAccessSignature",
	"usedevelopmentstorage":      "UseDevelopmentStorage",
	"developmentstorageproxyuri": "DevelopmentStorageProxyUri",
}

// ParseConnectionString parses an Azure Storage connection string in one of
// its three forms: account key (AccountName and AccountKey, with
// DefaultEndpointsProtocol and EndpointSuffix or explicit BlobEndpoint and
// QueueEndpoint), shared access signature (SharedAccessSignature with
// explicit endpoints or an AccountName), or UseDevelopmentStorage=true
// (Azurite at 127.0.0.1, blob port 10000 and queue port 10001, or at the
// host of DevelopmentStorageProxyUri). Keys are case-insensitive. Errors
// name the offending key, never a key's or signature's value.
func ParseConnectionString(s string) (Account, error) {
	kv := make(map[string]string)
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		name, known := connKeys[strings.ToLower(k)]
		if !ok || k == "" {
			return Account{}, invalid("connection string: a part is not key=value")
		}
		if !known {
			if !isWord(k) {
				// It may be a pasted secret: don't echo it.
				return Account{}, invalid("connection string: a part is not key=value with a known key")
			}
			return Account{}, invalid("connection string: unknown key %q", k)
		}
		if _, dup := kv[name]; dup {
			return Account{}, invalid("connection string: %s is given twice", name)
		}
		kv[name] = strings.TrimSpace(v)
	}
	if len(kv) == 0 {
		return Account{}, invalid("connection string is empty")
	}
	if dev, ok := kv["UseDevelopmentStorage"]; ok {
		return parseDevelopment(dev, kv)
	}
	if _, ok := kv["DevelopmentStorageProxyUri"]; ok {
		return Account{}, invalid("connection string: DevelopmentStorageProxyUri needs UseDevelopmentStorage=true")
	}

	a := Account{Name: kv["AccountName"], Key: kv["AccountKey"], SAS: strings.TrimPrefix(kv["SharedAccessSignature"], "?")}
	switch {
	case a.Key != "" && a.SAS != "":
		return Account{}, invalid("connection string: give AccountKey or SharedAccessSignature, not both")
	case a.Key != "":
		if a.Name == "" {
			return Account{}, invalid("connection string: AccountKey needs AccountName")
		}
		if _, err := base64.StdEncoding.DecodeString(a.Key); err != nil {
			return Account{}, invalid("connection string: AccountKey is not base64")
		}
	case a.SAS != "":
		if _, err := url.ParseQuery(a.SAS); err != nil {
			return Account{}, invalid("connection string: SharedAccessSignature is not a URL query")
		}
	default:
		return Account{}, invalid("connection string: no AccountKey or SharedAccessSignature")
	}

	proto := "https"
	if p, ok := kv["DefaultEndpointsProtocol"]; ok {
		proto = strings.ToLower(p)
		if proto != "http" && proto != "https" {
			return Account{}, invalid("connection string: DefaultEndpointsProtocol must be http or https")
		}
	}
	suffix := "core.windows.net"
	if s, ok := kv["EndpointSuffix"]; ok {
		if s == "" || strings.ContainsAny(s, "/?#@ ") {
			return Account{}, invalid("connection string: EndpointSuffix must be a domain like core.windows.net")
		}
		suffix = s
	}
	var err error
	for _, svc := range []struct {
		key, sub string
		dst      *string
	}{{"BlobEndpoint", "blob", &a.BlobEndpoint}, {"QueueEndpoint", "queue", &a.QueueEndpoint}} {
		if e, ok := kv[svc.key]; ok {
			if *svc.dst, err = endpoint(e); err != nil {
				return Account{}, invalid("connection string: %s %v", svc.key, err)
			}
		} else if a.Name != "" {
			*svc.dst = proto + "://" + a.Name + "." + svc.sub + "." + suffix
		}
	}
	if a.BlobEndpoint == "" && a.QueueEndpoint == "" {
		return Account{}, invalid("connection string: no AccountName, BlobEndpoint or QueueEndpoint")
	}
	return a, nil
}

func parseDevelopment(dev string, kv map[string]string) (Account, error) {
	if !strings.EqualFold(dev, "true") {
		return Account{}, invalid("connection string: UseDevelopmentStorage can only be true")
	}
	for k := range kv {
		if k != "UseDevelopmentStorage" && k != "DevelopmentStorageProxyUri" {
			return Account{}, invalid("connection string: %s cannot be combined with UseDevelopmentStorage", k)
		}
	}
	base := "http://127.0.0.1"
	if p, ok := kv["DevelopmentStorageProxyUri"]; ok {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return Account{}, invalid("connection string: DevelopmentStorageProxyUri must be an http(s) URL")
		}
		host := u.Hostname()
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		base = u.Scheme + "://" + host
	}
	return Account{
		Name:          devAccount,
		Key:           devKey,
		BlobEndpoint:  base + ":10000/" + devAccount,
		QueueEndpoint: base + ":10001/" + devAccount,
	}, nil
}

// endpoint checks a service URL and drops its trailing slash. A query is
// refused: a signature belongs in SharedAccessSignature.
func endpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("must be an http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("must have no query, fragment or user")
	}
	return strings.TrimRight(s, "/"), nil
}

func invalid(format string, args ...any) error {
	return hotswap.Errorf(hotswap.Invalid, format, args...)
}

// isWord reports whether s looks like a key name (1 to 40 ASCII letters),
// so an error can quote it without echoing a pasted secret.
func isWord(s string) bool {
	if len(s) == 0 || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}
