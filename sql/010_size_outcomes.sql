-- 008_size_outcomes.sql - the mirror answers the size question (issue 14): for each
-- product and size, units sold, units returned, and how many came back too small or too
-- large.  Money becomes exact numbers, return lines point to the order line they return,
-- return reasons carry a fit class, the joins and date ranges analysts run get indexes,
-- and two views compute the outcomes from the canonical tables, so that they are right
-- after every sync and every CSV file.  Existing mirrors convert in place: every value
-- below is derived from what the mirror already holds, without asking the shop.

-- ISO 4217 currencies and their exponent: how many decimals the minor unit has (EUR 2,
-- JPY 0, KWD 3, CLF 4).  kleepd converts prices with it; an amount in major units is
-- unit_price_minor / power(10, exponent).  A currency missing here leaves
-- unit_price_minor NULL (kleepctl check counts such lines); the source's text is kept in
-- the raw layer (records.json), so a later table converts it again by reprojection.
CREATE TABLE currencies (
	currency TEXT PRIMARY KEY,
	exponent INTEGER NOT NULL CHECK (exponent BETWEEN 0 AND 4)
) WITHOUT ROWID;
INSERT INTO currencies (currency, exponent) VALUES
	('AED', 2), ('AFN', 2), ('ALL', 2), ('AMD', 2), ('ANG', 2), ('AOA', 2), ('ARS', 2), ('AUD', 2),
	('AWG', 2), ('AZN', 2), ('BAM', 2), ('BBD', 2), ('BDT', 2), ('BGN', 2), ('BHD', 3), ('BIF', 0),
	('BMD', 2), ('BND', 2), ('BOB', 2), ('BOV', 2), ('BRL', 2), ('BSD', 2), ('BTN', 2), ('BWP', 2),
	('BYN', 2), ('BZD', 2), ('CAD', 2), ('CDF', 2), ('CHE', 2), ('CHF', 2), ('CHW', 2), ('CLF', 4),
	('CLP', 0), ('CNY', 2), ('COP', 2), ('COU', 2), ('CRC', 2), ('CUC', 2), ('CUP', 2), ('CVE', 2),
	('CZK', 2), ('DJF', 0), ('DKK', 2), ('DOP', 2), ('DZD', 2), ('EGP', 2), ('ERN', 2), ('ETB', 2),
	('EUR', 2), ('FJD', 2), ('FKP', 2), ('GBP', 2), ('GEL', 2), ('GHS', 2), ('GIP', 2), ('GMD', 2),
	('GNF', 0), ('GTQ', 2), ('GYD', 2), ('HKD', 2), ('HNL', 2), ('HRK', 2), ('HTG', 2), ('HUF', 2),
	('IDR', 2), ('ILS', 2), ('INR', 2), ('IQD', 3), ('IRR', 2), ('ISK', 0), ('JMD', 2), ('JOD', 3),
	('JPY', 0), ('KES', 2), ('KGS', 2), ('KHR', 2), ('KMF', 0), ('KPW', 2), ('KRW', 0), ('KWD', 3),
	('KYD', 2), ('KZT', 2), ('LAK', 2), ('LBP', 2), ('LKR', 2), ('LRD', 2), ('LSL', 2), ('LYD', 3),
	('MAD', 2), ('MDL', 2), ('MGA', 2), ('MKD', 2), ('MMK', 2), ('MNT', 2), ('MOP', 2), ('MRU', 2),
	('MUR', 2), ('MVR', 2), ('MWK', 2), ('MXN', 2), ('MXV', 2), ('MYR', 2), ('MZN', 2), ('NAD', 2),
	('NGN', 2), ('NIO', 2), ('NOK', 2), ('NPR', 2), ('NZD', 2), ('OMR', 3), ('PAB', 2), ('PEN', 2),
	('PGK', 2), ('PHP', 2), ('PKR', 2), ('PLN', 2), ('PYG', 0), ('QAR', 2), ('RON', 2), ('RSD', 2),
	('RUB', 2), ('RWF', 0), ('SAR', 2), ('SBD', 2), ('SCR', 2), ('SDG', 2), ('SEK', 2), ('SGD', 2),
	('SHP', 2), ('SLE', 2), ('SLL', 2), ('SOS', 2), ('SRD', 2), ('SSP', 2), ('STN', 2), ('SVC', 2),
	('SYP', 2), ('SZL', 2), ('THB', 2), ('TJS', 2), ('TMT', 2), ('TND', 3), ('TOP', 2), ('TRY', 2),
	('TTD', 2), ('TWD', 2), ('TZS', 2), ('UAH', 2), ('UGX', 0), ('USD', 2), ('USN', 2), ('UYI', 0),
	('UYU', 2), ('UYW', 4), ('UZS', 2), ('VED', 2), ('VES', 2), ('VND', 0), ('VUV', 0), ('WST', 2),
	('XAF', 0), ('XCD', 2), ('XCG', 2), ('XOF', 0), ('XPF', 0), ('YER', 2), ('ZAR', 2), ('ZMW', 2),
	('ZWG', 2), ('ZWL', 2);

-- Order lines: unit_price_minor is the price of ONE unit in the minor unit of currency
-- (1990 for EUR 19.90, 1500 for JPY 1500), rounded half away from zero when the source
-- gives more decimals than the currency has; a line's amount is unit_price_minor *
-- quantity.  Per unit, because that is what both sources give: the API's line `price`
-- sits beside `quantity` and the CSV contract's `price` column likewise (DOMAIN.md §1,
-- §3; the emulator's shop prices a product the same whatever the quantity).  currency is
-- on every line: the order's (API), the row's (CSV).
ALTER TABLE order_lines ADD COLUMN unit_price_minor INTEGER;
ALTER TABLE order_lines ADD COLUMN currency TEXT;
UPDATE order_lines SET currency = (SELECT o.currency FROM orders o WHERE o.order_id = order_lines.order_id);
-- The price text as kleepd wrote it: '-'? digits, then '.' (or ',') and digits.  The same
-- rule as lib/money.c: digits before the mark, at most 18 digits once scaled.
UPDATE order_lines SET unit_price_minor = m.minor
FROM (
	WITH t AS (
		SELECT l.rowid AS id, c.exponent AS e, substr(trim(l.price), 1, 1) = '-' AS neg,
		       replace(CASE WHEN substr(trim(l.price), 1, 1) IN ('-', '+')
		                    THEN substr(trim(l.price), 2) ELSE trim(l.price) END, ',', '.') AS s
		FROM order_lines l JOIN currencies c ON c.currency = l.currency
		WHERE l.price IS NOT NULL
	), u AS (
		SELECT id, e, neg, instr(s, '.') > 0 AS dot,
		       CASE WHEN instr(s, '.') THEN substr(s, 1, instr(s, '.') - 1) ELSE s END AS ip,
		       CASE WHEN instr(s, '.') THEN substr(s, instr(s, '.') + 1) ELSE '' END AS fp
		FROM t
	)
	SELECT id, (CASE WHEN neg THEN -1 ELSE 1 END) *
	           (CAST(ip || substr(fp || '0000', 1, e) AS INTEGER) +
	            (substr(fp || '0', e + 1, 1) >= '5')) AS minor
	FROM u
	WHERE ip <> '' AND ip NOT GLOB '*[^0-9]*' AND fp NOT GLOB '*[^0-9]*'
	      AND (NOT dot OR fp <> '') AND length(ip) + e <= 18
) m
WHERE order_lines.rowid = m.id;
ALTER TABLE order_lines DROP COLUMN price;

-- Return lines: order_line_no is the line_no of the order line each one returns, in the
-- return's order: the first line with the same variant, else the first with the same
-- sku; NULL when none is found (kleepctl check counts them).  kleepd writes it with each
-- return line, and ties an order's return lines again each time it writes the order's
-- lines (lib/outcome.c), so it is right whichever comes first, the return or its order.
-- (Triggers on order_lines did the same at ~10 us per order line written.)
ALTER TABLE return_lines ADD COLUMN order_line_no INTEGER;
CREATE INDEX return_lines_order ON return_lines (order_id, order_line_no);

-- The order line each return line returns, as lib/outcome.c finds it.
CREATE VIEW return_line_links AS
SELECT r.return_id, r.line_no,
       coalesce((SELECT min(l.line_no) FROM order_lines l
                 WHERE l.order_id = r.order_id AND l.variant_id = r.variant_id),
                (SELECT min(l.line_no) FROM order_lines l
                 WHERE l.order_id = r.order_id AND l.sku = r.sku)) AS order_line_no
FROM return_lines r;

UPDATE return_lines SET order_line_no = (SELECT k.order_line_no FROM return_line_links k
	WHERE k.return_id = return_lines.return_id AND k.line_no = return_lines.line_no);

-- Return reasons: fit is too_small, too_large, other_fit (length, shape...) or not_fit
-- (damaged, changed mind, late...), NULL while unclassified (kleepctl check lists them);
-- fit_source says who decided: 'config' (the merchant's [fit] section) or 'default'
-- (the reason's code and labels matched against lib/fit/phrases.json).  kleepd
-- classifies each reason when it is written, and every reason again when a job opens
-- the mirror, so a changed [fit] section applies at the next job.
ALTER TABLE return_reasons ADD COLUMN fit TEXT
	CHECK (fit IS NULL OR fit IN ('too_small', 'too_large', 'other_fit', 'not_fit'));
ALTER TABLE return_reasons ADD COLUMN fit_source TEXT
	CHECK (fit_source IS NULL OR fit_source IN ('config', 'default'));

-- The order statuses that mean cancelled (units of such orders are not sold): the API
-- profile's order_status.cancelled, written by kleepd when a job opens the mirror.
-- Compared without regard to case.
CREATE TABLE cancelled_statuses (
	status TEXT PRIMARY KEY COLLATE NOCASE
) WITHOUT ROWID;

-- Indexes for the joins and date ranges analysts run.  order_lines_product_size takes
-- over order_lines_product (a prefix of it) and covers size_outcomes' grouping.
CREATE INDEX returns_order ON returns (order_id);
CREATE INDEX returns_returned ON returns (returned_at);
CREATE INDEX orders_ordered ON orders (ordered_at);
CREATE INDEX return_lines_reason ON return_lines (reason_id);
DROP INDEX order_lines_product;
CREATE INDEX order_lines_product_size ON order_lines (product_id, size_label, quantity);

-- One row per order line, with what came back of it: returned_quantity, how much of it
-- too small or too large, and fit: the class of the returned units' reasons (one of the
-- four, 'unclassified' when a reason is not classified or unknown, 'mixed' when
-- several), NULL when nothing came back.  cancelled is 1 when the order's status is in
-- cancelled_statuses.  Only return lines tied to the line (order_line_no) count.
CREATE VIEW order_line_outcomes AS
SELECT l.order_id, l.line_no, l.product_id, l.variant_id, l.sku, l.size_label, l.quantity,
       l.unit_price_minor, l.currency, o.ordered_at, o.status,
       EXISTS (SELECT 1 FROM cancelled_statuses c WHERE c.status = o.status) AS cancelled,
       coalesce(sum(rl.quantity), 0) AS returned_quantity,
       coalesce(sum(CASE rr.fit WHEN 'too_small' THEN rl.quantity END), 0) AS returned_too_small,
       coalesce(sum(CASE rr.fit WHEN 'too_large' THEN rl.quantity END), 0) AS returned_too_large,
       CASE WHEN count(rl.return_id) = 0 THEN NULL
            WHEN min(coalesce(rr.fit, '')) <> max(coalesce(rr.fit, '')) THEN 'mixed'
            ELSE coalesce(max(rr.fit), 'unclassified') END AS fit
FROM order_lines l
JOIN orders o ON o.order_id = l.order_id
LEFT JOIN return_lines rl ON rl.order_id = l.order_id AND rl.order_line_no = l.line_no
LEFT JOIN return_reasons rr ON rr.reason_id = rl.reason_id
GROUP BY l.order_id, l.line_no;

-- One row per product and size label sold (in an order not cancelled): units sold, units
-- returned (of those orders' lines), returned too small, returned too large, and
-- return_rate = units_returned / units_sold (NULL when nothing was sold).  The same
-- figures as summing order_line_outcomes over the lines not cancelled, computed so that
-- a million order lines take about a second: every line from the covering index
-- order_lines_product_size (no table lookup, no sort), less the lines of cancelled
-- orders (few), plus the returns (fewer), each tied to its order line.
CREATE VIEW size_outcomes AS
WITH all_lines AS (
	SELECT product_id, size_label, sum(quantity) AS units, count(*) AS lines
	FROM order_lines GROUP BY product_id, size_label
), cancelled_lines AS (
	-- CROSS JOIN keeps the cancelled orders (and below, the return lines) outside: without
	-- statistics (kleepd runs no ANALYZE) the planner would walk every order line instead.
	SELECT l.product_id, l.size_label, sum(l.quantity) AS units, count(*) AS lines
	FROM orders o JOIN cancelled_statuses c ON c.status = o.status
	CROSS JOIN order_lines l ON l.order_id = o.order_id
	GROUP BY l.product_id, l.size_label
), returned AS (
	SELECT l.product_id, l.size_label, sum(rl.quantity) AS units,
	       sum(CASE rr.fit WHEN 'too_small' THEN rl.quantity ELSE 0 END) AS too_small,
	       sum(CASE rr.fit WHEN 'too_large' THEN rl.quantity ELSE 0 END) AS too_large
	FROM return_lines rl
	CROSS JOIN order_lines l ON l.order_id = rl.order_id AND l.line_no = rl.order_line_no
	CROSS JOIN orders o ON o.order_id = l.order_id
	LEFT JOIN return_reasons rr ON rr.reason_id = rl.reason_id
	WHERE NOT EXISTS (SELECT 1 FROM cancelled_statuses c WHERE c.status = o.status)
	GROUP BY l.product_id, l.size_label
)
SELECT a.product_id, p.parent_reference, a.size_label,
       a.units - coalesce(x.units, 0) AS units_sold,
       coalesce(r.units, 0) AS units_returned,
       coalesce(r.too_small, 0) AS returned_too_small,
       coalesce(r.too_large, 0) AS returned_too_large,
       CAST(coalesce(r.units, 0) AS REAL) / nullif(a.units - coalesce(x.units, 0), 0) AS return_rate
FROM all_lines a
LEFT JOIN cancelled_lines x ON x.product_id IS a.product_id AND x.size_label IS a.size_label
LEFT JOIN returned r ON r.product_id IS a.product_id AND r.size_label IS a.size_label
LEFT JOIN products p ON p.product_id = a.product_id
WHERE a.lines > coalesce(x.lines, 0);
