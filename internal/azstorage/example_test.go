package azstorage_test

import (
	"fmt"
	"time"

	"github.com/hotswap/hotswap/internal/azstorage"
)

// A blob trigger binds names from the blob's path; an output binding's path
// uses them.
func Example() {
	trigger, err := azstorage.ParseBlobPattern("uploads/{name}.{ext}")
	if err != nil {
		panic(err)
	}
	vals, ok := trigger.Match("uploads/cat.png")
	fmt.Println(ok, vals["name"], vals["ext"], trigger.Container())

	now := time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)
	out, err := azstorage.Expand("thumbnails/{DateTime:yyyy/MM}/{name}-small.{ext}", vals, now)
	fmt.Println(out, err)
	// Output:
	// true cat png uploads
	// thumbnails/2024/05/cat-small.png <nil>
}

func ExampleResolve() {
	settings := map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
	acct, err := azstorage.Resolve(settings, "") // "" is AzureWebJobsStorage
	fmt.Println(acct.QueueEndpoint, err)
	_, err = azstorage.Resolve(settings, "OrdersStorage")
	fmt.Println(err)
	// Output:
	// http://127.0.0.1:10001/devstoreaccount1 <nil>
	// app setting OrdersStorage is not set
}

func ExampleQueueMessages() {
	msgs, _ := azstorage.QueueMessages([]byte(`["first", {"order": 2}]`))
	fmt.Printf("%q\n", msgs)
	// Output: ["first" "{\"order\": 2}"]
}
