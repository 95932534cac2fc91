package azstorage

import (
	"net/url"
	"strings"
)

// Resolve finds the account a binding's `connection` names in the app
// settings, as the Azure Functions host does: "" means AzureWebJobsStorage;
// the setting NAME, else AzureWebJobsNAME, holds a connection string. Without
// one, the service URI settings are used: NAME__blobServiceUri,
// NAME__queueServiceUri, NAME__serviceUri (for the service its host names,
// *.blob.* or *.queue.*, else for both) and NAME__accountName (the account's
// default https endpoints). A URI whose query is a shared access signature
// authenticates with it; otherwise access is anonymous. Identity-based
// credentials (NAME__credential, NAME__clientId) are not supported and say
// so. A missing setting is the error "app setting NAME is not set".
func Resolve(settings map[string]string, connection string) (Account, error) {
	name := connection
	if name == "" {
		name = DefaultConnection
	}
	for _, n := range []string{name, "AzureWebJobs" + name} {
		if v, ok := settings[n]; ok && strings.TrimSpace(v) != "" {
			a, err := ParseConnectionString(v)
			if err != nil {
				return Account{}, invalid("app setting %s: %v", n, err)
			}
			return a, nil
		}
		if strings.HasPrefix(name, "AzureWebJobs") {
			break // AzureWebJobsAzureWebJobsX is never meant
		}
	}

	prefix := name + "__"
	for _, k := range []string{"credential", "clientId", "tenantId", "clientSecret", "certificate"} {
		if _, ok := settings[prefix+k]; ok {
			return Account{}, invalid("app setting %s%s: identity-based connections are not supported; set %s to a connection string or use service URIs with a SAS", prefix, k, name)
		}
	}
	var a Account
	var sas []string
	set := func(setting string, dst *string) error {
		v, ok := settings[setting]
		if !ok {
			return nil
		}
		e, sig, err := serviceURI(v)
		if err != nil {
			return invalid("app setting %s: %v", setting, err)
		}
		*dst = e
		if sig != "" {
			sas = append(sas, sig)
		}
		return nil
	}
	if acct, ok := settings[prefix+"accountName"]; ok {
		if !validAccountName(acct) {
			return Account{}, invalid("app setting %saccountName: an account name is 3 to 24 lowercase letters and digits", prefix)
		}
		a.Name = acct
		a.BlobEndpoint = "https://" + acct + ".blob.core.windows.net"
		a.QueueEndpoint = "https://" + acct + ".queue.core.windows.net"
	}
	if v, ok := settings[prefix+"serviceUri"]; ok {
		var both string
		if err := set(prefix+"serviceUri", &both); err != nil {
			return Account{}, err
		}
		host := strings.ToLower(hostOf(v))
		switch {
		case strings.Contains(host, ".blob."):
			a.BlobEndpoint = both
		case strings.Contains(host, ".queue."):
			a.QueueEndpoint = both
		default:
			a.BlobEndpoint, a.QueueEndpoint = both, both
		}
	}
	if err := set(prefix+"blobServiceUri", &a.BlobEndpoint); err != nil {
		return Account{}, err
	}
	if err := set(prefix+"queueServiceUri", &a.QueueEndpoint); err != nil {
		return Account{}, err
	}
	if a.BlobEndpoint == "" && a.QueueEndpoint == "" {
		return Account{}, invalid("app setting %s is not set", name)
	}
	if len(sas) > 0 {
		a.SAS = sas[0]
		for _, s := range sas[1:] {
			if s != a.SAS {
				return Account{}, invalid("app settings %s__*: the service URIs carry different shared access signatures", name)
			}
		}
	}
	return a, nil
}

// serviceURI splits a service URI setting into its endpoint and its
// signature (the query, when it has sig=).
func serviceURI(v string) (endpoint, sas string, err error) {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "", "", invalid("must be an http(s) URL")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil || q.Get("sig") == "" {
			return "", "", invalid("a query must be a shared access signature (with sig=)")
		}
		sas = u.RawQuery
	}
	u.RawQuery = ""
	return strings.TrimRight(u.String(), "/"), sas, nil
}

func hostOf(v string) string {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func validAccountName(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
