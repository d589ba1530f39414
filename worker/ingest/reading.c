/*
 * reading.c
 *	  Assembling a reading from read replies and rendering it as COPY text
 *	  (see reading.h). No floating point: every value is an exact integer
 *	  rescaled with dlt645_rescale and printed with dlt645_fixed_format. No
 *	  printf per reading either: the polls started in one loop turn share
 *	  their read_at, whose text is kept from the previous line.
 */
#include "reading.h"

#include <string.h>

#include "simclock.h"

const char READING_COPY_COLUMNS[] =
    "property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a, "
    "voltage_b, voltage_c, current_a, current_b, current_c, power_kw, "
    "power_a_kw, power_b_kw, power_c_kw, power_factor, frequency_hz, "
    "demand_kw, status_words, relay_open, meter_time";

const char READING_STAGE_DDL[] =
    "CREATE TEMP TABLE IF NOT EXISTS ingest_stage (property_id bigint, "
    "meter_id bigint, read_at timestamptz, energy_wh bigint, rate_wh "
    "bigint[], voltage_a numeric, voltage_b numeric, voltage_c numeric, "
    "current_a numeric, current_b numeric, current_c numeric, power_kw "
    "numeric, power_a_kw numeric, power_b_kw numeric, power_c_kw numeric, "
    "power_factor numeric, frequency_hz numeric, demand_kw numeric, "
    "status_words integer[], relay_open boolean, meter_time timestamp) "
    "ON COMMIT DELETE ROWS";

/* Rescales an element to the column's decimals; false if not exact. */
static bool
scaled(const dlt645_value *v, unsigned decimals, int64_t *out)
{
	if (v->flags & DLT645_VALUE_ABSENT)
		return false;
	return dlt645_rescale(v->num, v->decimals, decimals, out) == DLT645_OK;
}

/* Elements of a phase block into arr[sel - first]; returns the bit set. */
static uint8_t
take_elements(const dlt645_value *vals, int n, unsigned decimals,
              unsigned first, int64_t *arr, unsigned count)
{
	uint8_t have = 0;

	for (int i = 0; i < n; i++)
	{
		unsigned idx = vals[i].sel - first;

		if (vals[i].sel < first || idx >= count)
			continue;
		if (scaled(&vals[i], decimals, &arr[idx]))
			have |= (uint8_t) (1u << idx);
	}
	return have;
}

int
reading_apply(reading *r, const meter *m, const dlt645_message *msg)
{
	dlt645_value vals[DLT645_MAX_VALUES];
	int n =
	    dlt645_message_values(msg, NULL, vals, DLT645_MAX_VALUES, NULL, NULL);

	if (n < 0)
		return -1;
	switch (msg->di)
	{
		case DLT645_DI_FORWARD_ACTIVE_BLOCK:
		case DLT645_DI_FORWARD_ACTIVE_TOTAL:
			if (n < 1 || !scaled(&vals[0], 3, &r->energy_wh))
				return -1;
			r->have |= R_ENERGY;
			r->n_rates = 0;
			for (int i = 1; i < n && r->n_rates < m->rate_registers &&
			                r->n_rates < READING_MAX_RATES;
			     i++)
			{
				if (!scaled(&vals[i], 3, &r->rate_wh[r->n_rates]))
					break;
				r->n_rates++;
			}
			break;
		case DLT645_DI_VOLTAGE_BLOCK:
			r->volt_have = take_elements(vals, n, 1, 1, r->volt, 3);
			if (r->volt_have)
				r->have |= R_VOLTAGE;
			break;
		case DLT645_DI_CURRENT_BLOCK:
			r->cur_have = take_elements(vals, n, 3, 1, r->cur, 3);
			if (r->cur_have)
				r->have |= R_CURRENT;
			break;
		case DLT645_DI_ACTIVE_POWER_BLOCK:
			r->pw_have = take_elements(vals, n, 4, 0, r->pw, 4);
			if (r->pw_have)
				r->have |= R_POWER;
			break;
		case DLT645_DI_POWER_FACTOR_TOTAL:
			if (n >= 1 && scaled(&vals[0], 3, &r->pf))
				r->have |= R_PF;
			break;
		case DLT645_DI_FREQUENCY:
			if (n >= 1 && scaled(&vals[0], 2, &r->freq))
				r->have |= R_FREQ;
			break;
		case DLT645_DI_ACTIVE_DEMAND:
			if (n >= 1 && scaled(&vals[0], 4, &r->demand))
				r->have |= R_DEMAND;
			break;
		case DLT645_DI_STATUS_WORD_3:
			if (n >= 1 && !(vals[0].flags & DLT645_VALUE_ABSENT))
			{
				r->sw3 = vals[0].num;
				r->have |= R_SW3;
			}
			break;
		case DLT645_DI_DATE:
			if (n >= 1 && !(vals[0].flags & DLT645_VALUE_ABSENT))
			{
				r->clock.year = vals[0].time.year;
				r->clock.month = vals[0].time.month;
				r->clock.day = vals[0].time.day;
				r->have |= R_DATE;
			}
			break;
		case DLT645_DI_TIME:
			if (n >= 1 && !(vals[0].flags & DLT645_VALUE_ABSENT))
			{
				r->clock.hour = vals[0].time.hour;
				r->clock.minute = vals[0].time.minute;
				r->clock.second = vals[0].time.second;
				r->have |= R_TIME;
			}
			break;
		default:
			break;
	}
	return 0;
}

static char *
put_null(char *p)
{
	memcpy(p, "\t\\N", 3);
	return p + 3;
}

static char *
put_int(char *p, int64_t v)
{
	return p + dlt645_fixed_format(v, 0, p, 24);
}

/* read_at as timestamptz text; the last one is reused. */
static char *
put_time(char *p, int64_t us)
{
	static int64_t last_us = INT64_MIN;
	static char text[40];
	static size_t len;

	if (us != last_us)
	{
		len = (size_t) simclock_format(us, text, sizeof(text));
		last_us = us;
	}
	memcpy(p, text, len);
	return p + len;
}

static char *
put_fixed(char *p, bool present, int64_t num, unsigned decimals)
{
	if (!present)
		return put_null(p);
	*p++ = '\t';
	return p + dlt645_fixed_format(num, decimals, p, 24);
}

size_t
reading_render(const reading *r, const meter *m, char *buf)
{
	char *p = buf;

	p = put_int(p, m->property_id);
	*p++ = '\t';
	p = put_int(p, m->meter_id);
	*p++ = '\t';
	p = put_time(p, r->read_at);
	*p++ = '\t';
	p = put_int(p, r->energy_wh);
	if (r->n_rates > 0)
	{
		*p++ = '\t';
		*p++ = '{';
		for (int i = 0; i < r->n_rates; i++)
		{
			if (i)
				*p++ = ',';
			p = put_int(p, r->rate_wh[i]);
		}
		*p++ = '}';
	}
	else
		p = put_null(p);
	for (int i = 0; i < 3; i++)
		p = put_fixed(p, r->volt_have & (1u << i), r->volt[i], 1);
	for (int i = 0; i < 3; i++)
		p = put_fixed(p, r->cur_have & (1u << i), r->cur[i], 3);
	for (int i = 0; i < 4; i++)
		p = put_fixed(p, r->pw_have & (1u << i), r->pw[i], 4);
	p = put_fixed(p, r->have & R_PF, r->pf, 3);
	p = put_fixed(p, r->have & R_FREQ, r->freq, 2);
	p = put_fixed(p, r->have & R_DEMAND, r->demand, 4);
	if (r->have & R_SW3)
	{
		memcpy(p, "\t{NULL,NULL,", 12);
		p = put_int(p + 12, r->sw3);
		memcpy(p, (r->sw3 & DLT645_SW3_RELAY_OPEN) ? "}\tt" : "}\tf", 3);
		p += 3;
	}
	else
	{
		p = put_null(p);
		p = put_null(p);
	}
	if ((r->have & (R_DATE | R_TIME)) == (R_DATE | R_TIME))
	{
		*p++ = '\t';
		p += dlt645_datetime_format(
		    &r->clock, DLT645_DT_DATE | DLT645_DT_HM | DLT645_DT_SECONDS, p,
		    24);
	}
	else
		p = put_null(p);
	*p++ = '\n';
	return (size_t) (p - buf);
}
