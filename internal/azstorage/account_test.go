package azstorage

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

const testKey = "a2V5LWJ5dGVzLWZvci10ZXN0cw==" // base64 of "key-bytes-for-tests"

func TestParseConnectionString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Account
	}{
		{"account key, defaults", "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=" + testKey + ";EndpointSuffix=core.windows.net",
			Account{Name: "acct1", Key: testKey, BlobEndpoint: "https://acct1.blob.core.windows.net", QueueEndpoint: "https://acct1.queue.core.windows.net"}},
		{"account key, no protocol or suffix", "AccountName=acct1;AccountKey=" + testKey,
			Account{Name: "acct1", Key: testKey, BlobEndpoint: "https://acct1.blob.core.windows.net", QueueEndpoint: "https://acct1.queue.core.windows.net"}},
		{"sovereign suffix, http", "DefaultEndpointsProtocol=http;AccountName=acct1;AccountKey=" + testKey + ";EndpointSuffix=core.chinacloudapi.cn;",
			Account{Name: "acct1", Key: testKey, BlobEndpoint: "http://acct1.blob.core.chinacloudapi.cn", QueueEndpoint: "http://acct1.queue.core.chinacloudapi.cn"}},
		{"explicit endpoints (Azurite), keys in any case, trailing slash", "defaultendpointsprotocol=http;accountname=devstoreaccount1;accountkey=" + testKey + ";blobendpoint=http://127.0.0.1:10000/devstoreaccount1/;QUEUEENDPOINT=http://127.0.0.1:10001/devstoreaccount1;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
			Account{Name: "devstoreaccount1", Key: testKey, BlobEndpoint: "http://127.0.0.1:10000/devstoreaccount1", QueueEndpoint: "http://127.0.0.1:10001/devstoreaccount1"}},
		{"SAS with endpoints", "BlobEndpoint=https://acct1.blob.core.windows.net/;QueueEndpoint=https://acct1.queue.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=bq&sig=abc%3D",
			Account{SAS: "sv=2022-11-02&ss=bq&sig=abc%3D", BlobEndpoint: "https://acct1.blob.core.windows.net", QueueEndpoint: "https://acct1.queue.core.windows.net"}},
		{"SAS with only a queue endpoint and leading ?", "QueueEndpoint=https://q.example.com;SharedAccessSignature=?sv=1&sig=x",
			Account{SAS: "sv=1&sig=x", QueueEndpoint: "https://q.example.com"}},
		{"SAS with account name", "AccountName=acct1;SharedAccessSignature=sv=1&sig=x",
			Account{Name: "acct1", SAS: "sv=1&sig=x", BlobEndpoint: "https://acct1.blob.core.windows.net", QueueEndpoint: "https://acct1.queue.core.windows.net"}},
		{"development storage", "UseDevelopmentStorage=true",
			Account{Name: devAccount, Key: devKey, BlobEndpoint: "http://127.0.0.1:10000/devstoreaccount1", QueueEndpoint: "http://127.0.0.1:10001/devstoreaccount1"}},
		{"development storage with proxy", "UseDevelopmentStorage=True;DevelopmentStorageProxyUri=http://azurite.local:8888",
			Account{Name: devAccount, Key: devKey, BlobEndpoint: "http://azurite.local:10000/devstoreaccount1", QueueEndpoint: "http://azurite.local:10001/devstoreaccount1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConnectionString(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseConnectionString mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQ=" // must never appear in an error
	tests := []struct{ name, in, want string }{
		{"empty", "", "connection string is empty"},
		{"only separators", " ; ;", "connection string is empty"},
		{"not key=value", "AccountName=a;" + secret, "a part is not key=value"},
		{"not key=value, no =", "AccountName=a;abc", "a part is not key=value"},
		{"unknown key", "AccountName=a;AccountKee=" + secret, `unknown key "AccountKee"`},
		{"duplicate", "AccountName=a;AccountName=b;AccountKey=" + secret, "AccountName is given twice"},
		{"no credential", "AccountName=a", "no AccountKey or SharedAccessSignature"},
		{"key without name", "AccountKey=" + secret, "AccountKey needs AccountName"},
		{"key not base64", "AccountName=a;AccountKey=not*base64" + secret, "AccountKey is not base64"},
		{"key and sas", "AccountName=a;AccountKey=" + secret + ";SharedAccessSignature=sig=" + secret, "not both"},
		{"sas without endpoints", "SharedAccessSignature=sig=" + secret, "no AccountName, BlobEndpoint or QueueEndpoint"},
		{"bad sas", "QueueEndpoint=https://q;SharedAccessSignature=%zz" + secret, "SharedAccessSignature is not a URL query"},
		{"bad protocol", "DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey=" + secret, "DefaultEndpointsProtocol must be http or https"},
		{"bad suffix", "AccountName=a;AccountKey=" + secret + ";EndpointSuffix=evil.com/x", "EndpointSuffix must be a domain"},
		{"bad endpoint", "AccountName=a;AccountKey=" + secret + ";BlobEndpoint=127.0.0.1:10000", "BlobEndpoint must be an http(s) URL"},
		{"endpoint with query", "QueueEndpoint=https://q/?sig=" + secret + ";SharedAccessSignature=sig=x", "QueueEndpoint must have no query"},
		{"dev false", "UseDevelopmentStorage=false", "UseDevelopmentStorage can only be true"},
		{"dev with key", "UseDevelopmentStorage=true;AccountKey=" + secret, "AccountKey cannot be combined with UseDevelopmentStorage"},
		{"proxy without dev", "DevelopmentStorageProxyUri=http://x", "needs UseDevelopmentStorage=true"},
		{"bad proxy", "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=x", "DevelopmentStorageProxyUri must be an http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConnectionString(tc.in)
			if err == nil {
				t.Fatalf("ParseConnectionString(%q) = nil error, want %q", tc.in, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q echoes the secret", err)
			}
			if k := hotswap.ErrorKind(err); k != hotswap.Invalid {
				t.Errorf("error kind %v, want Invalid", k)
			}
		})
	}
}

func TestAccountStringHidesSecrets(t *testing.T) {
	a := Account{Name: "acct1", Key: testKey, SAS: "sig=secretsig", BlobEndpoint: "https://b"}
	for _, s := range []string{a.String(), fmt.Sprintf("%v %+v %#v %s", a, a, a, a)} {
		if strings.Contains(s, testKey) || strings.Contains(s, "secretsig") {
			t.Errorf("%q shows a secret", s)
		}
	}
}

func TestResolve(t *testing.T) {
	conn := "AccountName=acct1;AccountKey=" + testKey
	keyed := Account{Name: "acct1", Key: testKey, BlobEndpoint: "https://acct1.blob.core.windows.net", QueueEndpoint: "https://acct1.queue.core.windows.net"}
	tests := []struct {
		name       string
		settings   map[string]string
		connection string
		want       Account
	}{
		{"default setting", map[string]string{"AzureWebJobsStorage": conn}, "", keyed},
		{"named setting", map[string]string{"MyStorage": conn, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "MyStorage", keyed},
		{"AzureWebJobs prefix", map[string]string{"AzureWebJobsMyStorage": conn}, "MyStorage", keyed},
		{"name wins over prefixed", map[string]string{"MyStorage": conn, "AzureWebJobsMyStorage": "UseDevelopmentStorage=true"}, "MyStorage", keyed},
		{"service URIs with SAS", map[string]string{
			"Q__queueServiceUri": "https://acct1.queue.core.windows.net/?sv=1&sig=x",
			"Q__blobServiceUri":  "https://acct1.blob.core.windows.net?sv=1&sig=x",
		}, "Q", Account{SAS: "sv=1&sig=x", BlobEndpoint: "https://acct1.blob.core.windows.net", QueueEndpoint: "https://acct1.queue.core.windows.net"}},
		{"serviceUri of a queue host", map[string]string{"Q__serviceUri": "https://acct1.queue.core.windows.net"}, "Q",
			Account{QueueEndpoint: "https://acct1.queue.core.windows.net"}},
		{"serviceUri of a blob host", map[string]string{"B__serviceUri": "https://acct1.blob.core.windows.net/"}, "B",
			Account{BlobEndpoint: "https://acct1.blob.core.windows.net"}},
		{"serviceUri of another host serves both", map[string]string{"E__serviceUri": "http://127.0.0.1:10001/devstoreaccount1"}, "E",
			Account{BlobEndpoint: "http://127.0.0.1:10001/devstoreaccount1", QueueEndpoint: "http://127.0.0.1:10001/devstoreaccount1"}},
		{"accountName", map[string]string{"AzureWebJobsStorage__accountName": "acct1"}, "",
			Account{Name: "acct1", BlobEndpoint: "https://acct1.blob.core.windows.net", QueueEndpoint: "https://acct1.queue.core.windows.net"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.settings, tc.connection)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resolve mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name       string
		settings   map[string]string
		connection string
		want       string
	}{
		{"default missing", nil, "", "app setting AzureWebJobsStorage is not set"},
		{"named missing", map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "Orders", "app setting Orders is not set"},
		{"blank", map[string]string{"Orders": "  "}, "Orders", "app setting Orders is not set"},
		{"invalid", map[string]string{"Orders": "AccountName=a"}, "Orders", "app setting Orders: connection string: no AccountKey or SharedAccessSignature"},
		{"identity", map[string]string{"Orders__queueServiceUri": "https://a.queue.core.windows.net", "Orders__credential": "managedidentity"}, "Orders", "identity-based connections are not supported"},
		{"bad service URI", map[string]string{"Orders__queueServiceUri": "a.queue.core.windows.net"}, "Orders", "app setting Orders__queueServiceUri: must be an http(s) URL"},
		{"query not SAS", map[string]string{"Orders__queueServiceUri": "https://a.queue.core.windows.net?x=1"}, "Orders", "must be a shared access signature"},
		{"two SAS", map[string]string{"O__queueServiceUri": "https://a/?sig=1", "O__blobServiceUri": "https://b/?sig=2"}, "O", "different shared access signatures"},
		{"bad account name", map[string]string{"O__accountName": "Bad_Name"}, "O", "an account name is 3 to 24 lowercase letters and digits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(tc.settings, tc.connection)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve error %v, want %q", err, tc.want)
			}
			if k := hotswap.ErrorKind(err); k != hotswap.Invalid {
				t.Errorf("error kind %v, want Invalid", k)
			}
		})
	}
}
