//! Byte sizes as the NGXStorage API takes them: a whole number and a unit
//! letter (`sing`: M, G or T, powers of 1024).

use std::fmt;

/// One MiB.
pub const MIB: u64 = 1 << 20;
/// One GiB.
pub const GIB: u64 = 1 << 30;
/// One TiB.
pub const TIB: u64 = 1 << 40;

/// The unit letter of a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeUnit {
    /// MiB
    M,
    /// GiB
    G,
    /// TiB
    T,
}

impl SizeUnit {
    /// The letter the API takes.
    pub fn letter(self) -> &'static str {
        match self {
            SizeUnit::M => "M",
            SizeUnit::G => "G",
            SizeUnit::T => "T",
        }
    }

    /// Bytes in one unit.
    pub fn bytes(self) -> u64 {
        match self {
            SizeUnit::M => MIB,
            SizeUnit::G => GIB,
            SizeUnit::T => TIB,
        }
    }

    /// Parses a letter; `None` for anything else.
    pub fn from_letter(s: &str) -> Option<Self> {
        match s {
            "M" => Some(SizeUnit::M),
            "G" => Some(SizeUnit::G),
            "T" => Some(SizeUnit::T),
            _ => None,
        }
    }
}

/// A size as the API takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiSize {
    /// The number (`size`).
    pub number: u64,
    /// The unit (`sing`).
    pub unit: SizeUnit,
}

impl ApiSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.number.saturating_mul(self.unit.bytes())
    }
}

impl fmt::Display for ApiSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.number, self.unit.letter())
    }
}

/// A byte size the API cannot express.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Zero bytes: the document requires `size` of 1 or greater.
    #[error("{what}: a size of 0 bytes is not allowed; the array takes 1 MiB or more")]
    Zero {
        /// What the size is for.
        what: String,
    },
    /// Not a whole number of MiB, the smallest unit the API has.
    #[error(
        "{what}: {bytes} bytes is not a whole number of MiB (1048576 bytes), the smallest unit the array takes; use a multiple of 1Mi, for example {suggest} bytes"
    )]
    NotWholeMib {
        /// What the size is for.
        what: String,
        /// The size asked for.
        bytes: u64,
        /// The next whole MiB up.
        suggest: u64,
    },
}

/// Converts bytes to the API's (number, unit) with the largest exact unit.
/// `what` names the object in the error message.
pub fn to_api_size(bytes: u64, what: &str) -> Result<ApiSize, SizeError> {
    if bytes == 0 {
        return Err(SizeError::Zero { what: what.into() });
    }
    if !bytes.is_multiple_of(MIB) {
        return Err(SizeError::NotWholeMib {
            what: what.into(),
            bytes,
            suggest: bytes.div_ceil(MIB).saturating_mul(MIB),
        });
    }
    let unit = [SizeUnit::T, SizeUnit::G, SizeUnit::M]
        .into_iter()
        .find(|u| bytes.is_multiple_of(u.bytes()))
        .unwrap_or(SizeUnit::M);
    Ok(ApiSize {
        number: bytes / unit.bytes(),
        unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(bytes: u64) -> (u64, &'static str) {
        let s = to_api_size(bytes, "Lun x").expect("convertible");
        (s.number, s.unit.letter())
    }

    #[test]
    fn unit_boundaries() {
        assert_eq!(conv(MIB), (1, "M"));
        assert_eq!(conv(1023 * MIB), (1023, "M"));
        assert_eq!(conv(GIB), (1, "G"));
        assert_eq!(conv(GIB + MIB), (1025, "M"));
        assert_eq!(conv(1023 * GIB), (1023, "G"));
        assert_eq!(conv(TIB), (1, "T"));
        assert_eq!(conv(TIB + GIB), (1025, "G"));
        assert_eq!(conv(3 * TIB), (3, "T"));
        assert_eq!(conv(TIB + MIB), (1_048_577, "M"));
    }

    #[test]
    fn round_trips_to_the_same_bytes() {
        for bytes in [MIB, 5 * MIB, GIB, 7 * GIB + 3 * MIB, 2 * TIB] {
            assert_eq!(to_api_size(bytes, "x").map(ApiSize::bytes), Ok(bytes));
        }
    }

    #[test]
    fn zero_is_refused() {
        let err = to_api_size(0, "Lun data").expect_err("zero");
        assert!(err.to_string().contains("Lun data"), "{err}");
    }

    #[test]
    fn not_a_whole_mib_is_refused_with_a_suggestion() {
        for bytes in [1, MIB - 1, MIB + 1, GIB + 512, 1_000_000_000] {
            let err = to_api_size(bytes, "Lun data").expect_err("not whole MiB");
            let text = err.to_string();
            assert!(text.contains("not a whole number of MiB"), "{text}");
            assert!(text.contains(&bytes.to_string()), "{text}");
        }
        let err = to_api_size(MIB + 1, "x").expect_err("x");
        assert!(err.to_string().contains(&(2 * MIB).to_string()));
    }
}
