//! Time, injectable so tests run in virtual time.
//!
//! The engine reads the time for the journey and waits (retry backoff, call timeouts) only
//! through a [`Clock`]. [`SystemClock`] (feature `tokio`) is real time; [`ManualClock`] moves
//! only when a test advances it, so every retry schedule and timeout is reproducible.
//!
//! # Contract
//!
//! `now` never goes backwards. The future `sleep(d)` returns completes once `now` has advanced
//! by at least `d` from the call; it must be `'static` (it may outlive the borrow of the
//! clock) and dropping it cancels the wait.
//!
//! ```
//! use std::time::Duration;
//! use orderflow::clock::{Clock, ManualClock, Timestamp};
//! use futures::FutureExt;
//!
//! let clock = ManualClock::new(Timestamp::from_millis(1_000));
//! let mut nap = clock.sleep(Duration::from_millis(500));
//! assert!((&mut nap).now_or_never().is_none());
//! clock.advance(Duration::from_millis(500));
//! assert!(nap.now_or_never().is_some());
//! assert_eq!(clock.now(), Timestamp::from_millis(1_500));
//! ```
//!
//! A complete implementation: a clock that stands still and never wakes, for code paths that
//! must not wait.
//!
//! ```
//! use std::time::Duration;
//! use futures::future::{BoxFuture, FutureExt};
//! use orderflow::clock::{Clock, Timestamp};
//!
//! #[derive(Debug)]
//! struct Frozen(Timestamp);
//!
//! impl Clock for Frozen {
//!     fn now(&self) -> Timestamp {
//!         self.0
//!     }
//!     fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
//!         futures::future::pending().boxed()
//!     }
//! }
//! assert_eq!(Frozen(Timestamp::from_millis(7)).now().as_millis(), 7);
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since the Unix epoch (1970-01-01T00:00:00Z), in UTC.
///
/// It stores and serializes as the integer; it [displays](#impl-Display-for-Timestamp) as an
/// RFC 3339 date and time in UTC with milliseconds, and converts to and from
/// [`SystemTime`]. The earliest timestamp is the epoch: a [`SystemTime`] before it becomes
/// the epoch.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use orderflow::clock::Timestamp;
///
/// let t = Timestamp::from_millis(1_795_993_080_123);
/// assert_eq!(t.to_string(), "2026-11-29T22:58:00.123Z");
/// assert_eq!(Timestamp::parse_rfc3339("2026-11-29T22:58:00.123Z"), Ok(t));
/// assert_eq!("2026-11-29T23:58:00.123+01:00".parse(), Ok(t));
///
/// let system = UNIX_EPOCH + Duration::from_millis(1_795_993_080_123);
/// assert_eq!(Timestamp::from(system), t);
/// assert_eq!(t.to_system_time(), system);
/// // Before the epoch: the epoch.
/// assert_eq!(Timestamp::from(UNIX_EPOCH - Duration::from_secs(1)), Timestamp::from_millis(0));
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The time `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus a duration, saturating.
    pub fn after(self, d: Duration) -> Self {
        Self(self.0.saturating_add(millis(d)))
    }

    /// The time from `earlier` to this one, zero if `earlier` is later.
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Timestamp {
    /// The same instant as a [`SystemTime`]. Exact on every platform this crate runs on
    /// (Unix holds every `Timestamp`); where a platform's `SystemTime` ends earlier (Windows,
    /// after the year 30828), the latest `SystemTime` it holds.
    pub fn to_system_time(self) -> SystemTime {
        if let Some(t) = UNIX_EPOCH.checked_add(Duration::from_millis(self.0)) {
            return t;
        }
        // The latest millisecond the platform holds: `lo` fits, `hi` does not.
        let (mut lo, mut hi) = (0u64, self.0);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if UNIX_EPOCH.checked_add(Duration::from_millis(mid)).is_some() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        UNIX_EPOCH + Duration::from_millis(lo)
    }

    /// Reads an RFC 3339 date and time: `2026-11-29T22:58:00.123Z`, with any UTC offset
    /// (`+01:00`, `-05:30`), a `T`, `t` or space between date and time, and any number of
    /// fraction digits (those past the millisecond are dropped). Also reads the form
    /// [`Display`](#impl-Display-for-Timestamp) writes past the year 9999 (`+10000-01-01T…`).
    ///
    /// Refused, with the reason: anything else (a date without a time or offset, a day the
    /// month does not have, a leap second `:60`, which Unix time does not count), and
    /// instants a `Timestamp` does not hold (before the epoch, after `u64::MAX` ms).
    pub fn parse_rfc3339(text: &str) -> Result<Self, ParseTimestampError> {
        rfc3339::parse(text)
            .map(Self)
            .map_err(|reason| ParseTimestampError {
                text: text.chars().take(64).collect(),
                reason,
            })
    }
}

impl From<SystemTime> for Timestamp {
    /// The instant in whole milliseconds (a fraction dropped). A time before the epoch
    /// saturates to the epoch, `Timestamp(0)`; one past `u64::MAX` ms to `Timestamp(u64::MAX)`.
    fn from(time: SystemTime) -> Self {
        Self(time.duration_since(UNIX_EPOCH).map_or(0, millis))
    }
}

impl From<Timestamp> for SystemTime {
    /// [`Timestamp::to_system_time`].
    fn from(t: Timestamp) -> Self {
        t.to_system_time()
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-11-29T22:58:00.123Z`. Years past 9999, which RFC
/// 3339 cannot write, take ISO 8601's expanded form: a `+` and five or more digits
/// (`+10000-01-01T00:00:00.000Z`); [`Timestamp::parse_rfc3339`] reads them back.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, ms_of_day) = (self.0 / rfc3339::MS_PER_DAY, self.0 % rfc3339::MS_PER_DAY);
        let (year, month, day) = rfc3339::civil_from_days(days);
        if year > 9999 {
            write!(f, "+")?;
        }
        let secs = ms_of_day / 1000;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }
}

impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    /// [`Timestamp::parse_rfc3339`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_rfc3339(text)
    }
}

/// A text [`Timestamp::parse_rfc3339`] refused: the text (its first 64 characters) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTimestampError {
    text: String,
    reason: &'static str,
}

impl fmt::Display for ParseTimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not an RFC 3339 time this crate holds: {}",
            self.text, self.reason
        )
    }
}

impl std::error::Error for ParseTimestampError {}

/// Civil dates from and to days since the epoch (the proleptic Gregorian calendar, after
/// Howard Hinnant's `days_from_civil`), and the RFC 3339 reader.
mod rfc3339 {
    pub(super) const MS_PER_DAY: u64 = 86_400_000;

    /// Days from 0000-03-01 to 1970-01-01.
    const EPOCH_SHIFT: u64 = 719_468;
    const DAYS_PER_ERA: u64 = 146_097;

    /// (year, month 1–12, day 1–31) of a day counted from 1970-01-01.
    pub(super) fn civil_from_days(days: u64) -> (u64, u64, u64) {
        // Counted from 0000-03-01, so a leap day ends its year; no negatives after 1970.
        let z = days + EPOCH_SHIFT;
        let era = z / DAYS_PER_ERA;
        let doe = z % DAYS_PER_ERA;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = era * 400 + yoe + u64::from(month <= 2);
        (year, month, day)
    }

    /// Days from 1970-01-01 to a civil date (negative before it). The month and day must be
    /// valid ([`days_in_month`]); any year below 10^20 fits.
    pub(super) fn days_from_civil(year: u64, month: u64, day: u64) -> i128 {
        let y = i128::from(year) - i128::from(month <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = i128::from(if month > 2 { month - 3 } else { month + 9 });
        let doy = (153 * mp + 2) / 5 + i128::from(day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * i128::from(DAYS_PER_ERA) + doe - i128::from(EPOCH_SHIFT)
    }

    pub(super) fn is_leap(year: u64) -> bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    pub(super) fn days_in_month(year: u64, month: u64) -> u64 {
        match month {
            2 if is_leap(year) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// A cursor over the text's bytes.
    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl Reader<'_> {
        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.at).copied()
        }

        fn expect(&mut self, one_of: &[u8], what: &'static str) -> Result<u8, &'static str> {
            match self.peek() {
                Some(b) if one_of.contains(&b) => {
                    self.at += 1;
                    Ok(b)
                }
                _ => Err(what),
            }
        }

        /// Exactly `n` digits.
        fn digits(&mut self, n: usize, what: &'static str) -> Result<u64, &'static str> {
            let end = self.at + n;
            let run = self.bytes.get(self.at..end).ok_or(what)?;
            if !run.iter().all(u8::is_ascii_digit) {
                return Err(what);
            }
            self.at = end;
            Ok(run.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
        }

        /// A run of digits, at most `max` of them, and how many there were.
        fn run(&mut self, max: usize) -> (u64, usize) {
            let (mut value, mut count) = (0u64, 0);
            while let Some(d @ b'0'..=b'9') = self.peek() {
                if count < max {
                    value = value * 10 + u64::from(d - b'0');
                }
                count += 1;
                self.at += 1;
            }
            (value, count)
        }
    }

    pub(super) fn parse(text: &str) -> Result<u64, &'static str> {
        let mut r = Reader {
            bytes: text.as_bytes(),
            at: 0,
        };
        let year = if r.peek() == Some(b'+') {
            r.at += 1;
            let (year, count) = r.run(19);
            if !(5..=19).contains(&count) {
                return Err("a year after '+' has five to 19 digits");
            }
            year
        } else {
            r.digits(4, "the year must be four digits")?
        };
        r.expect(b"-", "expected '-' after the year")?;
        let month = r.digits(2, "the month must be two digits")?;
        r.expect(b"-", "expected '-' after the month")?;
        let day = r.digits(2, "the day must be two digits")?;
        if !(1..=12).contains(&month) {
            return Err("the month must be from 01 to 12");
        }
        if !(1..=days_in_month(year, month)).contains(&day) {
            return Err("the month has no such day");
        }
        r.expect(b"Tt ", "expected 'T' between the date and the time")?;
        let hour = r.digits(2, "the hour must be two digits")?;
        r.expect(b":", "expected ':' after the hour")?;
        let minute = r.digits(2, "the minute must be two digits")?;
        r.expect(b":", "expected ':' after the minute")?;
        let second = r.digits(2, "the second must be two digits")?;
        if hour > 23 || minute > 59 {
            return Err("the hour must be 00 to 23 and the minute 00 to 59");
        }
        if second == 60 {
            return Err("a leap second (:60) has no Unix time");
        }
        if second > 59 {
            return Err("the second must be 00 to 59");
        }
        let mut millis = 0;
        if r.peek() == Some(b'.') {
            r.at += 1;
            let (value, count) = r.run(3);
            if count == 0 {
                return Err("expected digits after '.'");
            }
            millis = value * 10u64.pow(3 - count.min(3) as u32);
        }
        // The offset east of UTC, in minutes.
        let offset: i64 = match r.expect(b"Zz+-", "expected 'Z' or an offset such as +01:00")? {
            b'Z' | b'z' => 0,
            sign => {
                let hours = r.digits(2, "the offset's hours must be two digits")?;
                r.expect(b":", "expected ':' in the offset")?;
                let minutes = r.digits(2, "the offset's minutes must be two digits")?;
                if hours > 23 || minutes > 59 {
                    return Err("the offset must be at most 23:59");
                }
                let east = (hours * 60 + minutes) as i64;
                if sign == b'-' { -east } else { east }
            }
        };
        if r.peek().is_some() {
            return Err("unexpected text after the time");
        }
        // Below 10^20 years and 24 h a day, every term fits an i128 many times over.
        let of_day = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        let utc = days_from_civil(year, month, day) * i128::from(MS_PER_DAY) + i128::from(of_day)
            - i128::from(offset) * 60_000;
        if utc < 0 {
            return Err("it is before 1970-01-01T00:00:00Z");
        }
        u64::try_from(utc).map_err(|_| "it is after the last time a Timestamp holds")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A source of time for the engine. See the [module docs](self).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }
}

impl<T: Clock + ?Sized> Clock for Box<T> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }
}

const _: Option<&dyn Clock> = None;

/// Real time, with tokio's timers.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(feature = "tokio")]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        tokio::time::sleep(duration).boxed()
    }
}

/// Virtual time that moves only when [`advance`](Self::advance)d. Clones share one time.
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualInner>>,
}

#[derive(Default)]
struct ManualInner {
    now: u64,
    sleepers: Vec<(u64, oneshot::Sender<()>)>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        let clock = Self::default();
        clock.lock().now = start.0;
        clock
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves time forward and wakes the sleepers now due.
    pub fn advance(&self, by: Duration) {
        let due = {
            let mut inner = self.lock();
            inner.now = inner.now.saturating_add(millis(by));
            let now = inner.now;
            let (due, waiting): (Vec<_>, Vec<_>) =
                inner.sleepers.drain(..).partition(|(at, _)| *at <= now);
            inner.sleepers = waiting;
            due
        };
        for (_, tx) in due {
            let _ = tx.send(());
        }
    }

    /// How many sleeps are waiting (dropped ones count until the next advance).
    pub fn sleepers(&self) -> usize {
        let mut inner = self.lock();
        inner.sleepers.retain(|(_, tx)| !tx.is_canceled());
        inner.sleepers.len()
    }

    /// The earliest time a waiting sleep completes.
    pub fn next_wake(&self) -> Option<Timestamp> {
        let mut inner = self.lock();
        inner.sleepers.retain(|(_, tx)| !tx.is_canceled());
        inner.sleepers.iter().map(|(at, _)| Timestamp(*at)).min()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("ManualClock")
            .field("now", &Timestamp(inner.now))
            .field("sleepers", &inner.sleepers.len())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.lock().now)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let mut inner = self.lock();
        let at = inner.now.saturating_add(millis(duration));
        if at <= inner.now {
            return futures::future::ready(()).boxed();
        }
        let (tx, rx) = oneshot::channel();
        inner.sleepers.push((at, tx));
        rx.map(|_| ()).boxed()
    }
}

/// Whole milliseconds of a duration: a fraction dropped, saturating at `u64::MAX`. The unit
/// of the flow document's durations and of the engine's clock.
pub(crate) fn whole_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Serde for durations as integer milliseconds: the form flow documents write them in.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::whole_millis(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }

    /// The same for an optional duration.
    pub(crate) mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&super::super::whole_millis(*d)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_sleepers_wake_in_deadline_order_only_when_due() {
        let clock = ManualClock::new(Timestamp(0));
        let mut a = clock.sleep(Duration::from_millis(10));
        let mut b = clock.sleep(Duration::from_millis(20));
        assert_eq!(clock.next_wake(), Some(Timestamp(10)));
        clock.advance(Duration::from_millis(15));
        assert!((&mut a).now_or_never().is_some());
        assert!((&mut b).now_or_never().is_none());
        assert_eq!(clock.sleepers(), 1);
        clock.advance(Duration::from_millis(5));
        assert!(b.now_or_never().is_some());
        assert!(clock.sleep(Duration::ZERO).now_or_never().is_some());
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(
            Timestamp(u64::MAX).after(Duration::from_secs(1)),
            Timestamp(u64::MAX)
        );
        assert_eq!(Timestamp(5).since(Timestamp(9)), Duration::ZERO);
    }

    fn shown(ms: u64) -> String {
        Timestamp(ms).to_string()
    }

    #[test]
    fn displays_rfc3339_in_utc() {
        assert_eq!(shown(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(shown(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(shown(86_399_999), "1970-01-01T23:59:59.999Z");
        assert_eq!(shown(1_795_993_080_123), "2026-11-29T22:58:00.123Z");
        // Leap days: every fourth year, not a century year unless it divides by 400.
        assert_eq!(shown(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(shown(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(shown(1_709_251_200_000), "2024-03-01T00:00:00.000Z");
        assert_eq!(shown(4_107_542_400_000 - 1), "2100-02-28T23:59:59.999Z");
        assert_eq!(shown(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(shown(13_574_606_400_000), "2400-02-29T12:00:00.000Z");
        // The last RFC 3339 instant, then ISO 8601's expanded years up to u64::MAX ms.
        assert_eq!(shown(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(shown(253_402_300_800_000), "+10000-01-01T00:00:00.000Z");
        assert_eq!(shown(u64::MAX), "+584556019-04-03T14:25:51.615Z");
        // Debug stays the number.
        assert_eq!(format!("{:?}", Timestamp(7)), "Timestamp(7)");
    }

    #[test]
    fn parses_rfc3339() {
        let parse = |s: &str| Timestamp::parse_rfc3339(s).map(Timestamp::as_millis);
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse("2026-11-29t22:58:00.123456789z"),
            Ok(1_795_993_080_123)
        );
        assert_eq!(parse("2026-11-29 22:58:00.1Z"), Ok(1_795_993_080_100));
        assert_eq!(
            parse("2026-11-30T04:28:00.123+05:30"),
            Ok(1_795_993_080_123)
        );
        assert_eq!(
            parse("2026-11-29T17:58:00.123-05:00"),
            Ok(1_795_993_080_123)
        );
        // An offset may carry a local time before 1970 to one after it.
        assert_eq!(parse("1969-12-31T23:00:00-01:00"), Ok(0));
        assert_eq!(parse("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        assert_eq!(parse("+10000-01-01T00:00:00.000Z"), Ok(253_402_300_800_000));
        assert_eq!(parse("+584556019-04-03T14:25:51.615Z"), Ok(u64::MAX));
        for (text, why) in [
            ("1969-12-31T23:59:59.999Z", "before 1970"),
            ("1970-01-01T00:00:00+00:01", "before 1970"),
            ("+584556019-04-03T14:25:51.616Z", "after the last time"),
            ("+99999999999999999999-01-01T00:00:00Z", "five to 19 digits"),
            ("2023-02-29T00:00:00Z", "no such day"),
            ("2100-02-29T00:00:00Z", "no such day"),
            ("2024-13-01T00:00:00Z", "month"),
            ("2024-04-31T00:00:00Z", "no such day"),
            ("2016-12-31T23:59:60Z", "leap second"),
            ("2024-01-01T24:00:00Z", "hour"),
            ("2024-01-01T00:00:00", "'Z' or an offset"),
            ("2024-01-01", "'T'"),
            ("2024-01-01T00:00:00.Z", "digits after '.'"),
            ("2024-01-01T00:00:00Z ", "unexpected text"),
            ("2024-01-01T00:00:00+24:00", "offset"),
            ("24-01-01T00:00:00Z", "year"),
            ("", "year"),
            ("２０２４-01-01T00:00:00Z", "year"),
        ] {
            let err = Timestamp::parse_rfc3339(text).unwrap_err();
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
        assert_eq!("1970-01-01T00:00:00.042Z".parse(), Ok(Timestamp(42)));
    }

    #[test]
    fn converts_to_and_from_system_time() {
        let t = Timestamp(1_795_993_080_123);
        let system = UNIX_EPOCH + Duration::from_millis(1_795_993_080_123);
        assert_eq!(t.to_system_time(), system);
        assert_eq!(SystemTime::from(t), system);
        assert_eq!(Timestamp::from(system), t);
        // A fraction of a millisecond is dropped; before the epoch is the epoch.
        assert_eq!(Timestamp::from(system + Duration::from_micros(999)), t);
        assert_eq!(
            Timestamp::from(UNIX_EPOCH - Duration::from_millis(1)),
            Timestamp(0)
        );
        assert_eq!(Timestamp::from(UNIX_EPOCH), Timestamp(0));
        // Unix holds every Timestamp.
        #[cfg(unix)]
        assert_eq!(
            Timestamp::from(Timestamp(u64::MAX).to_system_time()),
            Timestamp(u64::MAX)
        );
        let now = SystemTime::now();
        let back = Timestamp::from(now).to_system_time();
        assert!(back <= now && now.duration_since(back).unwrap() < Duration::from_millis(1));
    }

    /// The civil date of `ms` counted the slow way: whole years, then whole months.
    fn reference(ms: u64) -> String {
        let (mut days, of_day) = (ms / 86_400_000, ms % 86_400_000);
        let leap = |y: u64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let mut year = 1970;
        while days >= if leap(year) { 366 } else { 365 } {
            days -= if leap(year) { 366 } else { 365 };
            year += 1;
        }
        let lengths = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut month = 0;
        while days >= lengths[month] {
            days -= lengths[month];
            month += 1;
        }
        let s = of_day / 1000;
        format!(
            "{}{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            if year > 9999 { "+" } else { "" },
            month + 1,
            days + 1,
            s / 3600,
            s / 60 % 60,
            s % 60,
            of_day % 1000
        )
    }

    /// 1970 to the year 30000, where the slow count stays quick.
    const YEAR_30000: u64 = 884_541_340_800_000;

    proptest::proptest! {
        #[test]
        fn display_matches_a_day_by_day_count(ms in 0..YEAR_30000) {
            proptest::prop_assert_eq!(shown(ms), reference(ms));
        }

        #[test]
        fn display_parses_back(ms in proptest::prelude::any::<u64>()) {
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&shown(ms)), Ok(Timestamp(ms)));
        }

        #[test]
        fn days_from_civil_inverts_civil_from_days(days in 0..213_503_982_334u64) {
            let (y, m, d) = rfc3339::civil_from_days(days);
            proptest::prop_assert!((1..=12).contains(&m));
            proptest::prop_assert!((1..=rfc3339::days_in_month(y, m)).contains(&d));
            proptest::prop_assert_eq!(rfc3339::days_from_civil(y, m, d), i128::from(days));
        }
    }
}
