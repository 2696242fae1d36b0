package controlplane

import "encoding/json"

func rawJSON(v any) (json.RawMessage, error) { return json.Marshal(v) }
