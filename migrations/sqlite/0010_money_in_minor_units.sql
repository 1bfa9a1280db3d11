-- Money is an exact decimal in the currency's major unit on the API (issue 20); a store keeps
-- it as an integer count of the currency's minor units (ISO 4217: SAR 2 decimals, JPY 0,
-- KWD 3, CLF 4; codes without a minor unit, such as XAU, take whole amounts). Amounts were
-- whole numbers of major units until now: each becomes minor units. The API now refuses
-- amounts of 10^14 major units or more; the rare older one above that is kept at the largest
-- amount allowed, so that no multiplication overflows.
UPDATE delegations
SET max_amount = MIN(max_amount, 99999999999999) * CASE
    WHEN max_currency IN ('BIF','CLP','DJF','GNF','ISK','JPY','KMF','KRW','PYG','RWF','UGX',
                          'UYI','VND','VUV','XAF','XOF','XPF','XAG','XAU','XBA','XBB','XBC',
                          'XBD','XDR','XPD','XPT','XSU','XTS','XUA','XXX') THEN 1
    WHEN max_currency IN ('BHD','IQD','JOD','KWD','LYD','OMR','TND') THEN 1000
    WHEN max_currency IN ('CLF','UYW') THEN 10000
    ELSE 100
END
WHERE max_amount IS NOT NULL;

UPDATE approvals
SET amount = MIN(amount, 99999999999999) * CASE
    WHEN currency IN ('BIF','CLP','DJF','GNF','ISK','JPY','KMF','KRW','PYG','RWF','UGX',
                      'UYI','VND','VUV','XAF','XOF','XPF','XAG','XAU','XBA','XBB','XBC',
                      'XBD','XDR','XPD','XPT','XSU','XTS','XUA','XXX') THEN 1
    WHEN currency IN ('BHD','IQD','JOD','KWD','LYD','OMR','TND') THEN 1000
    WHEN currency IN ('CLF','UYW') THEN 10000
    ELSE 100
END
WHERE amount IS NOT NULL;
