// Command go-client calls cqrs-pool handlers served over NATS, as any non-Node caller can, from the protocol
// as docs/wire-protocol.md writes it down: subjects, headers, bodies in json/1 or tagged-json/1, the error
// envelope. It runs a fixed set of calls against the node of node.ts and checks every answer; it exits 1 on
// the first call whose answer is not the expected one.
//
//	go-client -url nats://127.0.0.1:4222 -prefix cqrs.json -codec json/1
//	go-client -url nats://127.0.0.1:4222 -prefix cqrs.tagged -codec tagged-json/1
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Envelope is the body of an error reply (docs/wire-protocol.md, "Error envelope").
type Envelope struct {
	T       string                 `json:"t"` // "error" or "value"
	Name    string                 `json:"name"`
	Message string                 `json:"message"`
	Code    interface{}            `json:"code"` // a string for every CqrsError; a handler's error may have any
	Cqrs    *CqrsDetails           `json:"cqrs"`
	Cause   *Envelope              `json:"cause"`
	Fields  map[string]interface{} `json:"fields"`
	Value   interface{}            `json:"value"` // when T is "value": something thrown that is not an error
	Stack   string                 `json:"stack"`
}

// CqrsDetails is present on every top-level error: the node's CqrsError.
type CqrsDetails struct {
	Issues       []Issue  `json:"issues"`
	RetryAfterMs *float64 `json:"retryAfterMs"`
	Handler      string   `json:"handler"`
}

// Issue is one zod issue of a VALIDATION error.
type Issue struct {
	Code    string        `json:"code"`
	Path    []interface{} `json:"path"`
	Message string        `json:"message"`
}

// CallError is a failed call: the node's error code and message, and the envelope they came in.
type CallError struct {
	Code     string
	Message  string
	Envelope *Envelope
}

func (e *CallError) Error() string { return e.Code + ": " + e.Message }

// Client calls the handlers served under one prefix, in one codec.
type Client struct {
	nc      *nats.Conn
	prefix  string
	codec   string
	timeout time.Duration
}

// Command runs a command; Query runs a query. `out` receives the result (nil to ignore it).
func (c *Client) Command(name string, input interface{}, metadata map[string]string, out interface{}) error {
	return c.call("cmd", name, input, metadata, out)
}

func (c *Client) Query(name string, input interface{}, metadata map[string]string, out interface{}) error {
	return c.call("qry", name, input, metadata, out)
}

func (c *Client) call(kind, name string, input interface{}, metadata map[string]string, out interface{}) error {
	body, err := json.Marshal(input)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(c.prefix + "." + kind + "." + name)
	msg.Data = body
	msg.Header.Set("Cqrs-Codec", c.codec)
	if metadata != nil {
		md, _ := json.Marshal(metadata) // values are strings: the protocol allows nothing else
		msg.Header.Set("Cqrs-Metadata", string(md))
	}
	msg.Header.Set("Cqrs-Timeout-Ms", strconv.FormatInt(c.timeout.Milliseconds(), 10))
	reply, err := c.nc.RequestMsg(msg, c.timeout)
	if errors.Is(err, nats.ErrNoResponders) {
		return &CallError{Code: "UNAVAILABLE", Message: name + ": no node serves it"}
	}
	if errors.Is(err, nats.ErrTimeout) {
		return &CallError{Code: "TIMEOUT", Message: name + ": no reply in " + c.timeout.String()}
	}
	if err != nil {
		return err
	}
	switch reply.Header.Get("Cqrs-Status") {
	case "error":
		// Readable whatever the codec when it holds no tagged values, which is the case here.
		var env Envelope
		if err := json.Unmarshal(reply.Data, &env); err != nil {
			return fmt.Errorf("%s: unreadable error reply: %w", name, err)
		}
		code, _ := env.Code.(string)
		return &CallError{Code: code, Message: env.Message, Envelope: &env}
	case "ok":
		if got := reply.Header.Get("Cqrs-Codec"); got != c.codec {
			return fmt.Errorf("%s: the reply is in %q, this client speaks %q", name, got, c.codec)
		}
		if out == nil {
			return nil
		}
		return decode(reply.Data, c.codec == "tagged-json/1", out)
	default:
		return fmt.Errorf("%s: not a cqrs-pool reply (no Cqrs-Status)", name)
	}
}

// decode reads a result; in tagged-json/1 the tags are turned into plain JSON values first.
func decode(data []byte, tagged bool, out interface{}) error {
	if !tagged {
		return json.Unmarshal(data, out)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keeps integers exact until they reach `out`
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return err
	}
	plain, err := untag(v)
	if err != nil {
		return err
	}
	again, err := json.Marshal(plain)
	if err != nil {
		return err
	}
	return json.Unmarshal(again, out)
}

// untag turns tagged-json/1 values ({"$t": …}) into values encoding/json understands.
func untag(v interface{}) (interface{}, error) {
	switch x := v.(type) {
	case []interface{}:
		for i := range x {
			var err error
			if x[i], err = untag(x[i]); err != nil {
				return nil, err
			}
		}
		return x, nil
	case map[string]interface{}:
		tag, ok := x["$t"].(string)
		if !ok {
			for k := range x {
				var err error
				if x[k], err = untag(x[k]); err != nil {
					return nil, err
				}
			}
			return x, nil
		}
		switch tag {
		case "u":
			return nil, nil // undefined
		case "n":
			return x["v"], nil // "NaN", "Infinity", "-Infinity", "-0": kept as text
		case "b":
			s, _ := x["v"].(string)
			return json.Number(s), nil // exact: a *big.Int or an int64 field reads it
		case "d":
			ms, ok := x["v"].(json.Number)
			if !ok {
				return nil, nil // an invalid date
			}
			n, err := ms.Int64()
			if err != nil {
				return nil, err
			}
			return time.UnixMilli(n).UTC(), nil
		case "x":
			s, _ := x["v"].(string)
			return base64.StdEncoding.DecodeString(s)
		case "r":
			return fmt.Sprintf("/%v/%v", x["v"], x["f"]), nil
		case "e":
			return map[string]interface{}{"name": x["name"], "message": x["message"]}, nil
		case "s":
			return untag(x["v"])
		case "m", "o":
			entries, _ := x["v"].([]interface{})
			out := map[string]interface{}{}
			for _, e := range entries {
				pair, _ := e.([]interface{})
				if len(pair) != 2 {
					return nil, fmt.Errorf("malformed $t:%s entry", tag)
				}
				value, err := untag(pair[1])
				if err != nil {
					return nil, err
				}
				out[fmt.Sprint(pair[0])] = value
			}
			return out, nil
		default:
			return nil, fmt.Errorf("unknown tag %q", tag)
		}
	default:
		return v, nil
	}
}

// User is what CreateUser and GetUser return.
type User struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

// Account is what GetAccount returns: in tagged-json/1 only (a bigint, a date and a set).
type Account struct {
	UserID   int64     `json:"userId"`
	Balance  *big.Int  `json:"balance"`
	OpenedAt time.Time `json:"openedAt"`
	Tags     []string  `json:"tags"`
}

var failed = false

func check(ok bool, what string, detail ...interface{}) {
	if ok {
		fmt.Printf("ok    %s\n", what)
		return
	}
	failed = true
	fmt.Printf("FAIL  %s %s\n", what, fmt.Sprint(detail...))
}

func callError(err error) *CallError {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce
	}
	return &CallError{Code: "(none)", Message: fmt.Sprint(err)}
}

func main() {
	url := flag.String("url", os.Getenv("NATS_URL"), "NATS server URL")
	prefix := flag.String("prefix", "cqrs.json", "subject prefix of the serving node")
	codec := flag.String("codec", "json/1", "json/1 or tagged-json/1: what the node under -prefix speaks")
	flag.Parse()
	nc, err := nats.Connect(*url, nats.Name("go-client"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(2)
	}
	defer nc.Close()
	c := &Client{nc: nc, prefix: *prefix, codec: *codec, timeout: 5 * time.Second}
	at := func(what string) string { return *codec + " " + what }

	// A query.
	var ada *User
	err = c.Query("GetUser", map[string]interface{}{"userId": 1}, nil, &ada)
	check(err == nil && ada != nil && *ada == User{1, "ada", "ada@example.com"}, at("query GetUser returns user 1"), err, ada)
	var nobody *User
	err = c.Query("GetUser", map[string]interface{}{"userId": 99}, nil, &nobody)
	check(err == nil && nobody == nil, at("query GetUser returns null for an unknown user"), err, nobody)

	// A command, run in the node's worker pool.
	var grace User
	err = c.Command("CreateUser", map[string]interface{}{"userId": 7, "username": "grace", "email": "grace@example.com"}, map[string]string{"correlationId": "go-1"}, &grace)
	check(err == nil && grace == User{7, "grace", "grace@example.com"}, at("command CreateUser returns the user"), err, grace)

	// A command that returns nothing: null in json/1, {"$t":"u"} in tagged-json/1.
	var nothing interface{} = "unset"
	err = c.Command("DeleteUser", map[string]interface{}{"userId": 7}, nil, &nothing)
	check(err == nil && nothing == nil, at("command DeleteUser returns nothing"), err, nothing)

	// Metadata: a JSON object of strings, as the handler sees it.
	var seen map[string]string
	metadata := map[string]string{"correlationId": "go-2", "client": "go"}
	err = c.Query("Whoami", map[string]interface{}{}, metadata, &seen)
	check(err == nil && reflect.DeepEqual(seen, metadata), at("metadata reaches the handler"), err, seen)

	// A validation error: VALIDATION, with the zod issues.
	err = c.Command("CreateUser", map[string]interface{}{"userId": 0, "username": "x", "email": "nope"}, nil, nil)
	ve := callError(err)
	var paths []string
	if ve.Envelope != nil && ve.Envelope.Cqrs != nil {
		for _, issue := range ve.Envelope.Cqrs.Issues {
			paths = append(paths, fmt.Sprint(issue.Path...))
		}
	}
	check(ve.Code == "VALIDATION" && strings.Join(paths, ",") == "userId,username,email" && ve.Envelope.Cqrs.Handler == "CreateUser",
		at("validation error: VALIDATION with an issue per bad field"), ve, paths)

	// A handler error: HANDLER_FAILED, the handler's own error (code and fields) as cause.
	err = c.Command("CreateUser", map[string]interface{}{"userId": 13, "username": "thirteen", "email": "t@example.com"}, nil, nil)
	he := callError(err)
	var cause *Envelope
	if he.Envelope != nil {
		cause = he.Envelope.Cause
	}
	check(he.Code == "HANDLER_FAILED" && cause != nil && cause.Message == "user 13 is reserved" && cause.Code == "E_RESERVED" && cause.Fields["reservedBy"] == "admin",
		at("handler error: HANDLER_FAILED with the handler's error as cause"), he, cause)
	check(he.Envelope != nil && he.Envelope.Stack == "" && (cause == nil || cause.Stack == ""), at("no stack traces on the wire by default"))

	// Nothing serves the subject: NATS answers no-responders at once.
	err = c.Query("Unserved", map[string]interface{}{}, nil, nil)
	check(callError(err).Code == "UNAVAILABLE", at("an unserved name is UNAVAILABLE"), err)

	// What plain JSON cannot carry: refused by the node in json/1, tagged in tagged-json/1.
	var account Account
	err = c.Query("GetAccount", map[string]interface{}{"userId": 1}, nil, &account)
	if *codec == "json/1" {
		ae := callError(err)
		check(ae.Code == "NOT_CLONEABLE" && strings.Contains(ae.Message, "bigint"), at("a bigint result is refused in plain JSON"), ae)
	} else {
		balance, _ := new(big.Int).SetString("18446744073709551617", 10) // 2^64 + 1
		check(err == nil && account.Balance != nil && account.Balance.Cmp(balance) == 0 &&
			account.OpenedAt.Equal(time.UnixMilli(1700000000123)) && strings.Join(account.Tags, ",") == "gold,early",
			at("bigint, date and set arrive tagged"), err, account)
	}

	if *codec == "json/1" {
		// Integers beyond 2^53 are refused rather than rounded; big ids travel as strings.
		err = c.Query("GetUser", json.RawMessage(`{"userId":9007199254740993}`), nil, nil)
		be := callError(err)
		check(be.Code == "VALIDATION" && strings.Contains(be.Message, "beyond"), at("an integer beyond 2^53 is refused"), be)
		// The node refuses a body in another codec instead of misreading it.
		other := &Client{nc: nc, prefix: *prefix, codec: "tagged-json/1", timeout: c.timeout}
		err = other.Query("GetUser", map[string]interface{}{"userId": 1}, nil, nil)
		me := callError(err)
		check(me.Code == "VALIDATION" && strings.Contains(me.Message, "this node speaks json/1"), at("a request in another codec is refused"), me)
	}

	if failed {
		os.Exit(1)
	}
}
