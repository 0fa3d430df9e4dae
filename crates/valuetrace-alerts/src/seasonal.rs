//! Seasonal baselines: the same window on each of the previous days, summarised by the mean or,
//! robustly, the median with the median absolute deviation (MAD) so one odd day (a holiday, an
//! earlier incident) neither drags the baseline nor makes the normal look abnormal.

/// What a seasonal comparison found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seasonal {
    /// Mean (or median, robust) of the previous days' values.
    pub baseline: f64,
    /// Current ÷ baseline (`None` when the baseline is 0).
    pub ratio: Option<f64>,
    /// 1.4826 × MAD of the previous days (robust only): a standard deviation for normal data.
    pub scaled_mad: Option<f64>,
    pub outside_band: bool,
    /// Robust: also beyond `mad_k` scaled MADs of the median (always true when not robust).
    pub beyond_spread: bool,
}

impl Seasonal {
    pub fn is_anomaly(&self) -> bool {
        self.outside_band && self.beyond_spread
    }
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    })
}

/// Median absolute deviation around the median.
pub fn mad(values: &[f64]) -> Option<f64> {
    let center = median(values)?;
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    median(&deviations)
}

/// Compares `current` with the previous days' values.
pub fn compare(
    current: f64,
    previous: &[f64],
    band: [f64; 2],
    robust: bool,
    mad_k: f64,
) -> Option<Seasonal> {
    let baseline = if robust {
        median(previous)?
    } else {
        mean(previous)?
    };
    let ratio = (baseline > 0.0).then(|| current / baseline);
    let outside_band = match ratio {
        Some(ratio) => ratio < band[0] || ratio > band[1],
        // Nothing usually, something now: only a rise can be abnormal.
        None => current > 0.0,
    };
    let scaled_mad = robust.then(|| mad(previous).unwrap_or(0.0) * 1.4826);
    let beyond_spread = match scaled_mad {
        Some(spread) if spread > 0.0 => (current - baseline).abs() > mad_k * spread,
        _ => true,
    };
    Some(Seasonal {
        baseline,
        ratio,
        scaled_mad,
        outside_band,
        beyond_spread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_mads() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(mad(&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]), Some(1.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn one_odd_day_moves_the_mean_not_the_median() {
        // Six normal days at ~100 and a Black Friday at 1000.
        let previous = [100.0, 98.0, 103.0, 1000.0, 101.0, 99.0, 102.0];
        let plain = compare(100.0, &previous, [0.5, 2.0], false, 3.0).expect("baseline");
        assert!(
            plain.is_anomaly(),
            "the mean (229) makes a normal 100 look like a dip"
        );
        let robust = compare(100.0, &previous, [0.5, 2.0], true, 3.0).expect("baseline");
        assert!(!robust.is_anomaly(), "{robust:?}");
        let dip = compare(30.0, &previous, [0.5, 2.0], true, 3.0).expect("baseline");
        assert!(dip.is_anomaly(), "{dip:?}");
    }

    #[test]
    fn a_ratio_inside_the_band_is_normal_whatever_the_spread() {
        let previous = [100.0; 7];
        let normal = compare(150.0, &previous, [0.5, 2.0], true, 3.0).expect("baseline");
        assert!(!normal.is_anomaly());
        let spike = compare(250.0, &previous, [0.5, 2.0], true, 3.0).expect("baseline");
        assert!(
            spike.is_anomaly(),
            "MAD 0 means any value outside the band counts"
        );
    }
}
