// Package compliance is Satu's compliance domain: the dated rule sets that fix
// the share of mined digital assets a licensed miner must sell (Law No. 193-VII
// "On Digital Assets", Art. 8 §4), the obligations computed from a miner's
// monthly report under those rules, and the licence types of the registry
// (Art. 9).
//
// The package is pure: it reads nothing but its own embedded rule-set files,
// keeps no package-level mutable state and never looks at a clock — every date
// is passed in. Dates are calendar days represented as time.Time at UTC
// midnight. Volumes are int64 minor units of the asset (satoshi for BTC) and a
// share is an exact rational, so no float is ever involved.
//
// Rules are data, not code: each rule set is a versioned JSON file under
// rulesets/, every step carries its source, and where a fact is not confirmed
// the software refuses to guess (apperr.RuleNotConfirmed) rather than invent a
// number.
package compliance
