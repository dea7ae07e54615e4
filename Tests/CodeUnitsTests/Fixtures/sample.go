package cache

import (
	"fmt"
	"net/http"
)

const Size = 10

// Cache holds values.
type Cache struct {
	items map[string]int
}

// Get returns a value.
func (c *Cache) Get(key string) (int, bool) {
	v, ok := c.items[key]
	return v, ok
}

func New(a, b int) *Cache {
	fmt.Println(a, b)
	http.Get("x")
	return &Cache{}
}
