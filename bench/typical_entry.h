/*
 * The "typical entry" of issue 8, shared by the C benchmark drivers (rbench.c, abbench.c): a
 * 64-byte message, a user, a tenant, a 200-byte nested context (compact JSON object).
 * request_id and client_log_datetime are left to the library (a fresh UUID v4 and the time of
 * the call), as most callers do. And the clock every driver times calls with.
 */
#ifndef RARCH_BENCH_TYPICAL_ENTRY_H
#define RARCH_BENCH_TYPICAL_ENTRY_H

#include <stdint.h>
#include <time.h>

static const char MESSAGE[] =
    "payment authorised for order 8F3A-2291; gateway=stripe retries=0";
static const char USER[] = "user-7c9e6679";
static const char TENANT[] = "tenant-acme-eu";
static const char CONTEXT[] =
    "{\"order\":{\"id\":829145,\"items\":3,\"total\":{\"amount\":129.90,\"currency\":\"EUR\"}},"
    "\"http\":{\"method\":\"POST\",\"path\":\"/api/v2/checkout\",\"status\":201},"
    "\"client\":{\"ip\":\"10.1.2.3\",\"app\":\"web-74\"},\"flags\":[\"a\",\"b\"]}";

/* CLOCK_MONOTONIC in nanoseconds. */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
