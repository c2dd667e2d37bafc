// Package miningfee computes Kazakhstan's digital-mining fee (Tax Code
// Arts. 606-1…606-5): a charge in tenge per kWh of electricity a digital
// miner consumes, assessed per miner and calendar quarter from metered
// consumption.
//
// # Model
//
// The rules are data, not code. The embedded file tables/kz-mining-fee.json
// holds dated tables; the table in force for a quarter is the last one whose
// From is not after the quarter's first day. Every table carries the grade and
// source of its figures (RULES.md grades: A law text, B law-firm or government
// summary, C news, P the 2024 paper), its due-date rule and its rates:
//
//   - 2022: a flat 1 ₸/kWh on all power; payment by the 20th of the month
//     after the quarter, no separate return date.
//   - 2023 (Law No. 135-VII): a regressive scale by the miner's average price
//     of purchased power, written as explicit price brackets, plus special
//     rates for own generation, own renewable generation and unmetered power,
//     and a maximum. Return by the 15th and payment by the 25th of the second
//     month after the quarter (Law No. 165-VII).
//   - 2024 on: 2 ₸/kWh, 1 ₸/kWh for own or own renewable generation, from
//     news reports only: such an assessment is marked SecondarySource.
//
// Consumption is grouped into four categories — purchased (grid and imported,
// metered), own, own renewable (both metered) and unmetered (any source) — and
// each category gets one rate: the highest of the candidate rates that apply
// to it, capped at the table's maximum. See Tables.Assess for the rule.
//
// # Refusing to guess
//
// Where the law is not confirmed the file says so and the package refuses
// with apperr.RuleNotConfirmed instead of inventing a number: the 2023
// brackets [0, 5) and (10, 24) ₸/kWh are in the file without a rate, so a
// quarter whose average price falls there is refused, and so is a quarter
// before the first table. The refusal is driven by the data (a rate marked
// confirmed: false), not by code, so a confirmed figure is added by editing
// the file alone.
//
// # Satu's assumptions
//
// Where the sources are silent Satu makes a marked choice, listed in the
// file's notes and repeated here:
//
//   - "5–10 ₸" is read as the closed interval [5, 10] and "≥ 24 ₸" as [24, ∞).
//   - The average price is weighted by kWh over the quarter's metered grid and
//     imported records and placed in its bracket exactly (integer
//     cross-multiplication; no rounding can move a price across a bound).
//   - "Where several rates apply the highest wins" is applied per category,
//     not to the miner's whole consumption.
//   - Unmetered kWh get the no-metering rate; a table without one (2022,
//     2024 on) charges them the purchased rate, because without a meter the
//     power cannot be shown to be own or renewable.
//   - 2024-on due dates repeat the 2023 rule (DueRule.SatuDefault).
//   - The last table applies to all later quarters.
//
// # Purity
//
// The package reads nothing but its own embedded file, keeps no mutable
// package state and never looks at a clock: the quarter is passed in. Energy
// is int64 kWh, prices and rates are int64 tiyn (1 ₸ = 100 tiyn) and amounts
// are int64 tiyn checked for overflow, so no float is ever involved. Dates are
// calendar days as time.Time at UTC midnight.
package miningfee
