//! Money: an integer count of minor units in an ISO 4217 currency.

use std::fmt;

/// Why an amount or a currency was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("This currency is not one Salus knows (give an ISO 4217 code such as USD).")]
    UnknownCurrency,
    #[error("Give the amount as a number, such as 12.50.")]
    NotAnAmount,
    #[error("The amount has more decimals than the currency has.")]
    TooManyDecimals,
    #[error("The amounts are in different currencies.")]
    CurrencyMismatch,
    #[error("The amount is too large.")]
    Overflow,
}

impl MoneyError {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownCurrency => "unknown_currency",
            Self::NotAnAmount => "invalid_amount",
            Self::TooManyDecimals => "too_many_decimals",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::Overflow => "amount_too_large",
        }
    }
}

/// An ISO 4217 currency and how many decimals its minor unit has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// The currencies Salus knows: (code, minor-unit exponent, symbol shown before amounts).
const KNOWN: [(&str, u8, &str); 14] = [
    ("USD", 2, "$"),
    ("EUR", 2, "€"),
    ("GBP", 2, "£"),
    ("CAD", 2, "CA$"),
    ("AUD", 2, "A$"),
    ("NZD", 2, "NZ$"),
    ("CHF", 2, "CHF "),
    ("SEK", 2, "SEK "),
    ("NOK", 2, "NOK "),
    ("DKK", 2, "DKK "),
    ("JPY", 0, "¥"),
    ("INR", 2, "₹"),
    ("MXN", 2, "MX$"),
    ("ZAR", 2, "R "),
];

impl Currency {
    pub const USD: Self = Self {
        code: *b"USD",
        exponent: 2,
    };

    /// The currency with this ISO 4217 code (upper case).
    ///
    /// # Errors
    /// `UnknownCurrency` for a code not in Salus's table.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        KNOWN
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|(c, e, _)| Self {
                code: c.as_bytes().try_into().unwrap_or(*b"XXX"),
                exponent: *e,
            })
            .ok_or(MoneyError::UnknownCurrency)
    }

    /// The ISO 4217 code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Decimals of the minor unit (2 for cents, 0 for yen).
    pub fn exponent(self) -> u8 {
        self.exponent
    }

    fn symbol(&self) -> &'static str {
        KNOWN
            .iter()
            .find(|(c, _, _)| *c == self.code())
            .map_or("", |(_, _, s)| *s)
    }
}

/// An amount of money: whole minor units of a currency, negative for a credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// The amount in minor units.
    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    pub fn is_negative(self) -> bool {
        self.minor < 0
    }

    pub fn is_positive(self) -> bool {
        self.minor > 0
    }

    fn same(self, other: Self) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch)
        }
    }

    /// `self + other`.
    ///
    /// # Errors
    /// `CurrencyMismatch`; `Overflow`.
    pub fn plus(self, other: Self) -> Result<Self, MoneyError> {
        self.same(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|m| Self::new(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`.
    ///
    /// # Errors
    /// `CurrencyMismatch`; `Overflow`.
    pub fn minus(self, other: Self) -> Result<Self, MoneyError> {
        self.same(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|m| Self::new(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// The sum of `amounts`, zero of `currency` when there are none.
    ///
    /// # Errors
    /// `CurrencyMismatch`; `Overflow`.
    pub fn sum(
        currency: Currency,
        amounts: impl IntoIterator<Item = Self>,
    ) -> Result<Self, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Self::zero(currency), Self::plus)
    }

    /// Compares two amounts of one currency.
    ///
    /// # Errors
    /// `CurrencyMismatch`.
    pub fn compare(self, other: Self) -> Result<std::cmp::Ordering, MoneyError> {
        self.same(other)?;
        Ok(self.minor.cmp(&other.minor))
    }

    /// An amount as people type it — `12`, `12.5`, `12.50`, `1,234.50` — in `currency`,
    /// read digit by digit (never through a float).
    ///
    /// # Errors
    /// `NotAnAmount`; `TooManyDecimals`; `Overflow`.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let text = text.trim();
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let whole: String = whole.chars().filter(|c| *c != ',').collect();
        if whole.is_empty() && fraction.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(MoneyError::NotAnAmount);
        }
        let exponent = usize::from(currency.exponent);
        if fraction.len() > exponent {
            return Err(MoneyError::TooManyDecimals);
        }
        let mut minor: i64 = 0;
        let digits = whole
            .chars()
            .chain(fraction.chars())
            .chain(std::iter::repeat_n('0', exponent - fraction.len()));
        for d in digits {
            let digit = i64::from(d.to_digit(10).ok_or(MoneyError::NotAnAmount)?);
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(digit))
                .ok_or(MoneyError::Overflow)?;
        }
        Ok(Self::new(if negative { -minor } else { minor }, currency))
    }
}

impl Money {
    /// An amount written with more decimals than the currency has — as another system's
    /// export may, "28.104000000000003" — rounded to the minor unit, half away from zero,
    /// digit by digit. Exponent forms are not read.
    ///
    /// # Errors
    /// `NotAnAmount`; `Overflow`.
    pub fn parse_rounded(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let text = text.trim();
        let exponent = usize::from(currency.exponent);
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if fraction.len() <= exponent {
            return Self::parse(text, currency);
        }
        let (kept, dropped) = fraction.split_at(exponent);
        if !dropped.chars().all(|c| c.is_ascii_digit()) {
            return Err(MoneyError::NotAnAmount);
        }
        let truncated = if exponent == 0 {
            Self::parse(whole, currency)?
        } else {
            Self::parse(&format!("{whole}.{kept}"), currency)?
        };
        if dropped.starts_with(['5', '6', '7', '8', '9']) {
            let unit = if truncated.is_negative() || whole.starts_with('-') {
                -1
            } else {
                1
            };
            truncated.plus(Self::new(unit, currency))
        } else {
            Ok(truncated)
        }
    }

    /// The amount as the API writes it: digits and a point, no symbol or grouping — "1234.50",
    /// "-5.00", "1200" (yen).
    pub fn plain(self) -> String {
        let exponent = u32::from(self.currency.exponent);
        let scale = 10_u64.pow(exponent);
        let units = self.minor.unsigned_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        if exponent == 0 {
            format!("{sign}{units}")
        } else {
            format!(
                "{sign}{}.{:0width$}",
                units / scale,
                units % scale,
                width = exponent as usize
            )
        }
    }
}

impl fmt::Display for Money {
    /// "$1,234.50", "€12.00", "¥1,200", "-$5.00".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = u32::from(self.currency.exponent);
        let scale = 10_u64.pow(exponent);
        let units = self.minor.unsigned_abs();
        let (whole, fraction) = (units / scale, units % scale);
        let digits = whole.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if self.minor < 0 { "-" } else { "" };
        let symbol = self.currency.symbol();
        if exponent == 0 {
            write!(f, "{sign}{symbol}{grouped}")
        } else {
            write!(
                f,
                "{sign}{symbol}{grouped}.{fraction:0width$}",
                width = exponent as usize
            )
        }
    }
}
