/*
 * forward.c
 *	  The forward_send job: posts due rows of prepaid.forward_outbox to the
 *	  integrated platform with libcurl. Rows are claimed in one transaction
 *	  (with a five-minute lease, so a crash never leaves one stuck), posted
 *	  with no transaction open, and the outcomes recorded in another:
 *	  2xx delivered; 4xx failed with the response; anything else (refused,
 *	  timeout, 5xx) retried with exponential backoff. Each request carries
 *	  Idempotency-Key and X-Prepaid-Signature: sha256=HMAC(secret, body).
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "bgw.h"

#define FORWARD_BATCH 20
#define MAX_BODY      2000

char *prepaid_forward_url = NULL;
char *prepaid_forward_secret = NULL;
int prepaid_forward_connect_timeout_ms = 3000;
int prepaid_forward_timeout_ms = 10000;

typedef struct OutItem
{
	int64 property_id;
	char *day;
	char *key;
	char *payload;
	char *signature; /* computed inside the claiming transaction */
	int attempts;
	long code;           /* HTTP status, 0 when none */
	char *error;         /* transport error, or NULL */
	StringInfoData body; /* response body (first MAX_BODY bytes) */
} OutItem;

static size_t
collect_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	StringInfo body = (StringInfo) arg;
	size_t n = size * nmemb;
	size_t room = MAX_BODY - Min((size_t) body->len, MAX_BODY);

	appendBinaryStringInfo(body, ptr, Min(n, room));
	return n;
}

static char *
signature(const char *payload)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8 mac[32];
	char *hex = palloc(sizeof(mac) * 2 + 8);
	const char *secret = prepaid_forward_secret ? prepaid_forward_secret : "";

	if (ctx == NULL ||
	    pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
	    pg_hmac_update(ctx, (const uint8 *) payload, strlen(payload)) < 0 ||
	    pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
		elog(ERROR, "could not compute the HMAC-SHA256 signature");
	pg_hmac_free(ctx);
	strcpy(hex, "sha256=");
	hex_encode((const char *) mac, sizeof(mac), hex + 7);
	hex[7 + sizeof(mac) * 2] = '\0';
	return hex;
}

static void
post_item(OutItem *it)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	char line[512];

	initStringInfo(&it->body);
	if (curl == NULL)
	{
		it->error = pstrdup("could not initialise libcurl");
		return;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	snprintf(line, sizeof(line), "Idempotency-Key: %s", it->key);
	headers = curl_slist_append(headers, line);
	snprintf(line, sizeof(line), "X-Prepaid-Signature: %s", it->signature);
	headers = curl_slist_append(headers, line);
	curl_easy_setopt(curl, CURLOPT_URL, prepaid_forward_url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long) prepaid_forward_connect_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
	                 (long) prepaid_forward_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, it->payload);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(it->payload));
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &it->body);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "pg_prepaid-forward/0.1");
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK)
		it->error =
		    psprintf("%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &it->code);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
}

static void
xact_begin(const char *what)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
}

static void
xact_end(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Runs one round of the job; returns the number of rows delivered. */
int
prepaid_forward_send(MemoryContext cxt)
{
	OutItem items[FORWARD_BATCH];
	int n = 0;
	int delivered = 0;
	static bool curl_ready = false;

	if (prepaid_forward_url == NULL || prepaid_forward_url[0] == '\0')
		return 0;
	if (!curl_ready)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
			elog(ERROR, "could not initialise libcurl");
		curl_ready = true;
	}

	/* 1. claim, with a lease */
	xact_begin("pg_prepaid forward: claiming outbox rows");
	if (SPI_execute(
	        "UPDATE prepaid.forward_outbox o SET attempts = o.attempts + 1, "
	        " last_attempt_at = now(), next_attempt_at = now() + interval '5 "
	        "minutes' "
	        "FROM (SELECT property_id, day FROM prepaid.forward_outbox "
	        "      WHERE status = 'pending' AND next_attempt_at <= now() "
	        "      ORDER BY next_attempt_at, day LIMIT 20 FOR UPDATE SKIP "
	        "LOCKED) d "
	        "WHERE o.property_id = d.property_id AND o.day = d.day "
	        "RETURNING o.property_id, o.day::text, o.idempotency_key, "
	        " o.payload::text, o.attempts",
	        false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim outbox rows");
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		for (uint64 i = 0; i < SPI_processed && n < FORWARD_BATCH; i++)
		{
			HeapTuple tup = SPI_tuptable->vals[i];
			TupleDesc desc = SPI_tuptable->tupdesc;
			OutItem *it = &items[n++];

			memset(it, 0, sizeof(*it));
			it->property_id = pg_strtoint64(SPI_getvalue(tup, desc, 1));
			it->day = SPI_getvalue(tup, desc, 2);
			it->key = SPI_getvalue(tup, desc, 3);
			it->payload = SPI_getvalue(tup, desc, 4);
			it->attempts = pg_strtoint32(SPI_getvalue(tup, desc, 5));
			/* the HMAC needs a resource owner: only inside a transaction */
			it->signature = signature(it->payload);
		}
		MemoryContextSwitchTo(old);
	}
	xact_end();
	if (n == 0)
		return 0;

	/* 2. post, no transaction open */
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		pgstat_report_activity(STATE_RUNNING, "pg_prepaid forward: posting");
		for (int i = 0; i < n; i++)
		{
			post_item(&items[i]);
			CHECK_FOR_INTERRUPTS();
		}
		MemoryContextSwitchTo(old);
	}

	/* 3. record */
	xact_begin("pg_prepaid forward: recording results");
	for (int i = 0; i < n; i++)
	{
		OutItem *it = &items[i];
		Oid types[6] = {INT8OID, DATEOID, INT4OID, TEXTOID, TEXTOID, INT4OID};
		Datum args[6];
		char nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		const char *status;

		if (it->error == NULL && it->code >= 200 && it->code < 300)
			status = "delivered", delivered++;
		else if (it->error == NULL && it->code >= 400 && it->code < 500)
			status = "failed";
		else
			status = "pending";
		args[0] = Int64GetDatum(it->property_id);
		args[1] = DirectFunctionCall1(date_in, CStringGetDatum(it->day));
		args[2] = Int32GetDatum((int32) it->code);
		if (it->code == 0)
			nulls[2] = 'n';
		args[3] = CStringGetTextDatum(it->body.data);
		args[4] = it->error ? CStringGetTextDatum(it->error) : (Datum) 0;
		if (it->error == NULL)
			nulls[4] = 'n';
		args[5] = Int32GetDatum(it->attempts);
		if (strcmp(status, "pending") == 0 && it->error == NULL)
		{
			args[4] = CStringGetTextDatum(psprintf("HTTP %ld", it->code));
			nulls[4] = ' ';
		}
		if (SPI_execute_with_args(
		        psprintf("UPDATE prepaid.forward_outbox SET status = '%s', "
		                 " response_code = $3, response_body = $4, last_error "
		                 "= $5, "
		                 " delivered_at = CASE WHEN '%s' = 'delivered' THEN "
		                 "now() END, "
		                 " next_attempt_at = now() + least(interval '1 hour', "
		                 "   interval '30 seconds' * power(2, $6 - 1)) "
		                 "WHERE property_id = $1 AND day = $2",
		                 status, status),
		        6, types, args, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record a forward result");
		if (it->error || it->code >= 300)
			ereport(LOG, (errmsg("pg_prepaid forward of %s: %s", it->key,
			                     it->error ? it->error
			                               : psprintf("HTTP %ld", it->code))));
	}
	xact_end();
	return delivered;
}
