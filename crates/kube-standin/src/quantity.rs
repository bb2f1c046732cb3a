//! Checks of Kubernetes quantities given on the command line (the API server
//! would reject a bad one, but later and less clearly).

/// A Kubernetes quantity: a decimal number (sign optional) followed by a binary
/// suffix (Ki Mi Gi Ti Pi Ei), a decimal one (n u m k M G T P E), an exponent
/// (e3, E-2) or nothing. Returns it unchanged.
pub fn parse_quantity(s: &str) -> Result<String, String> {
    let bad = || format!("'{s}' is not a Kubernetes quantity (e.g. 4, 500m, 8Gi, 512Mi)");
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(digits_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(bad());
    }
    let ok_suffix = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        _ => {
            let exp = suffix
                .strip_prefix(['e', 'E'])
                .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e));
            matches!(exp, Some(e) if !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()))
        }
    };
    if !ok_suffix {
        return Err(bad());
    }
    if s.starts_with('-') {
        return Err(format!("'{s}': a node cannot offer a negative quantity"));
    }
    Ok(s.to_string())
}

/// A CPU quantity (as [`parse_quantity`]), not zero.
pub fn parse_cpu(s: &str) -> Result<String, String> {
    let q = parse_quantity(s)?;
    if q.trim_start_matches('+')
        .chars()
        .all(|c| c == '0' || c == '.' || c == 'm')
    {
        return Err(format!("'{s}': a node needs some CPU"));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in ["4", "2.5", "500m", "8Gi", "512Mi", "1e3", "1E-2", "0", "+3"] {
            assert_eq!(parse_quantity(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in ["", "Gi", "8GB", "8 Gi", "1.2.3", "e3", "1e", "-1", "four"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
        assert!(parse_cpu("0").is_err());
        assert!(parse_cpu("0m").is_err());
        assert!(parse_cpu("250m").is_ok());
    }
}
