#include <stdio.h>
#include "util.h"

static const int LIMIT = 8;

/* A node. */
struct node {
    int value;
};

/// Sums values.
int sum(int *values, size_t n) {
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        total += values[i];
    }
    printf("%d\n", total);
    return total;
}
