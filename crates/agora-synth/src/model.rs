//! The synthetic patient model: one person at a time, from `(seed, person_id)` only.
//!
//! Rows are produced into a [`Chunk`] of plain structs; ids are assigned later by the writer,
//! so the model never depends on what other persons (or threads) did.

use crate::date::{REF_DAY, REF_YEAR, days_from_civil};
use crate::rng::{Rng, cumulative};
use crate::schema::{self, N_CLINICAL};
use crate::vocab::*;

pub(crate) const NO_DATE: i32 = i32::MIN;
pub(crate) const NO_VALUE: i32 = i32::MIN;
/// Hard cap on visits per person so per-person memory stays bounded.
const MAX_VISITS: usize = 1500;

/// A deliberate data-quality defect carried by one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Defect {
    None,
    BadDate,
    TextInInt,
    EmptyRequired,
    EndBeforeStart,
    OrphanPerson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VisitKind {
    Outpatient,
    Emergency,
    Inpatient,
}

#[derive(Debug)]
pub(crate) struct PersonRow {
    pub(crate) pid: u64,
    pub(crate) male: bool,
    pub(crate) birth: i32,
    pub(crate) birth_min: u16,
    /// 0 white, 1 black, 2 asian, 3 unknown.
    pub(crate) race: u8,
    pub(crate) hispanic: bool,
}

#[derive(Debug)]
pub(crate) struct PeriodRow {
    pub(crate) pid: u64,
    pub(crate) start: i32,
    pub(crate) end: i32,
}

#[derive(Debug)]
pub(crate) struct VisitRow {
    pub(crate) pid: u64,
    pub(crate) kind: VisitKind,
    pub(crate) start: i32,
    pub(crate) end: i32,
    pub(crate) start_min: u16,
    pub(crate) end_min: u16,
    /// First visit of its person (no preceding visit).
    pub(crate) first: bool,
    pub(crate) defect: Defect,
}

#[derive(Debug)]
pub(crate) struct CondRow {
    pub(crate) pid: u64,
    pub(crate) visit: u32,
    pub(crate) c: &'static Concept,
    pub(crate) start: i32,
    pub(crate) end: i32,
    pub(crate) defect: Defect,
}

#[derive(Debug)]
pub(crate) struct DrugRow {
    pub(crate) pid: u64,
    pub(crate) visit: u32,
    pub(crate) d: &'static Drug,
    pub(crate) start: i32,
    pub(crate) end: i32,
    pub(crate) defect: Defect,
}

#[derive(Debug)]
pub(crate) struct ProcRow {
    pub(crate) pid: u64,
    pub(crate) visit: u32,
    pub(crate) c: &'static Concept,
    pub(crate) date: i32,
    pub(crate) end: i32,
    pub(crate) defect: Defect,
}

#[derive(Debug)]
pub(crate) struct MeasRow {
    pub(crate) pid: u64,
    pub(crate) visit: u32,
    pub(crate) lab: &'static Lab,
    pub(crate) date: i32,
    /// `value_as_number` scaled by `10^lab.dec`, or `NO_VALUE`.
    pub(crate) value: i32,
    pub(crate) defect: Defect,
}

#[derive(Debug)]
pub(crate) struct ObsRow {
    pub(crate) pid: u64,
    pub(crate) visit: u32,
    pub(crate) c: &'static Concept,
    pub(crate) date: i32,
    pub(crate) num: i32,
    pub(crate) text: &'static str,
    pub(crate) defect: Defect,
}

#[derive(Debug)]
pub(crate) struct DeathRow {
    pub(crate) pid: u64,
    pub(crate) date: i32,
    pub(crate) cause: Option<&'static Concept>,
}

/// Rows of a run of consecutive persons. Reused between chunks to avoid reallocations.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) persons: Vec<PersonRow>,
    pub(crate) periods: Vec<PeriodRow>,
    pub(crate) visits: Vec<VisitRow>,
    pub(crate) conds: Vec<CondRow>,
    pub(crate) drugs: Vec<DrugRow>,
    pub(crate) procs: Vec<ProcRow>,
    pub(crate) meas: Vec<MeasRow>,
    pub(crate) obs: Vec<ObsRow>,
    pub(crate) deaths: Vec<DeathRow>,
}

impl Chunk {
    pub(crate) fn clear(&mut self) {
        self.persons.clear();
        self.periods.clear();
        self.visits.clear();
        self.conds.clear();
        self.drugs.clear();
        self.procs.clear();
        self.meas.clear();
        self.obs.clear();
        self.deaths.clear();
    }

    /// Rows per clinical table, indexed like `schema::TABLE_NAMES`.
    pub(crate) fn counts(&self) -> [u64; N_CLINICAL] {
        let mut c = [0u64; N_CLINICAL];
        c[schema::PERSON] = self.persons.len() as u64;
        c[schema::OBSERVATION_PERIOD] = self.periods.len() as u64;
        c[schema::VISIT_OCCURRENCE] = self.visits.len() as u64;
        c[schema::CONDITION_OCCURRENCE] = self.conds.len() as u64;
        c[schema::DRUG_EXPOSURE] = self.drugs.len() as u64;
        c[schema::PROCEDURE_OCCURRENCE] = self.procs.len() as u64;
        c[schema::MEASUREMENT] = self.meas.len() as u64;
        c[schema::OBSERVATION] = self.obs.len() as u64;
        c[schema::DEATH] = self.deaths.len() as u64;
        c
    }
}

// ---------------------------------------------------------------------------------------------
// Static clinical knowledge (weights are ours; loosely shaped on primary-care case mixes).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sex {
    Any,
    Female,
}

/// An acute problem seen at a visit, with its usual duration and treatment.
#[derive(Debug)]
struct Acute {
    c: &'static Concept,
    w_child: u32,
    w_adult: u32,
    sex: Sex,
    min_age: u8,
    max_age: u8,
    days: (i32, i32),
    /// Not before this date (e.g. COVID-19); 0 = always.
    since: i32,
    /// Alternative treatments: at most one is given, each with its probability.
    rx_child: &'static [(&'static Drug, f64)],
    rx_adult: &'static [(&'static Drug, f64)],
    /// Independent procedures.
    procs: &'static [(&'static Concept, f64)],
}

const COVID_START: i32 = days_from_civil(2020, 3, 1);

#[allow(clippy::too_many_arguments)]
const fn acute(
    c: &'static Concept,
    w_child: u32,
    w_adult: u32,
    days: (i32, i32),
    rx_child: &'static [(&'static Drug, f64)],
    rx_adult: &'static [(&'static Drug, f64)],
    procs: &'static [(&'static Concept, f64)],
) -> Acute {
    Acute {
        c,
        w_child,
        w_adult,
        sex: Sex::Any,
        min_age: 0,
        max_age: 120,
        days,
        since: 0,
        rx_child,
        rx_adult,
        procs,
    }
}

const fn female(a: Acute, min_age: u8, max_age: u8) -> Acute {
    Acute {
        sex: Sex::Female,
        min_age,
        max_age,
        ..a
    }
}

const fn ages(a: Acute, min_age: u8, max_age: u8) -> Acute {
    Acute {
        min_age,
        max_age,
        ..a
    }
}

const fn since(a: Acute, day: i32) -> Acute {
    Acute { since: day, ..a }
}

const NONE_RX: &[(&Drug, f64)] = &[];
const NO_PROC: &[(&Concept, f64)] = &[];
const STREP_RX_CHILD: &[(&Drug, f64)] = &[
    (&D_PENICILLIN_V_500, 0.40),
    (&D_PENICILLIN_V_250, 0.30),
    (&D_AMOXICILLIN_250, 0.20),
];
const STREP_RX_ADULT: &[(&Drug, f64)] = &[(&D_PENICILLIN_V_500, 0.78), (&D_AMOXICILLIN_500, 0.14)];
const SPRAIN_RX_CHILD: &[(&Drug, f64)] =
    &[(&D_IBUPROFEN_100, 0.5), (&D_ACETAMINOPHEN_160_CHEW, 0.2)];
const SPRAIN_RX_ADULT: &[(&Drug, f64)] = &[
    (&D_IBUPROFEN_200, 0.35),
    (&D_NAPROXEN_220, 0.25),
    (&D_DICLOFENAC_75, 0.10),
];
const FRACTURE_RX_ADULT: &[(&Drug, f64)] = &[
    (&D_APAP_HYDROCODONE, 0.4),
    (&D_IBUPROFEN_200, 0.25),
    (&D_TRAMADOL_50, 0.1),
];
const APAP_CHILD: &[(&Drug, f64)] = &[(&D_ACETAMINOPHEN_160_CHEW, 0.3)];
const APAP_ADULT: &[(&Drug, f64)] = &[(&D_ACETAMINOPHEN_325, 0.3)];
const LACERATION_PROCS: &[(&Concept, f64)] = &[(&PR_SUTURE, 0.8)];
const FRACTURE_PROCS: &[(&Concept, f64)] = &[(&PR_BONE_IMMOBILIZATION, 0.9), (&PR_CHEST_XRAY, 0.1)];

/// Acute problems of primary care.
#[rustfmt::skip]
static ACUTE_OP: [Acute; 26] = [
    acute(&VIRAL_SINUSITIS, 10, 14, (7, 21), APAP_CHILD, APAP_ADULT, NO_PROC),
    acute(&VIRAL_PHARYNGITIS, 10, 8, (5, 14), APAP_CHILD, APAP_ADULT, NO_PROC),
    acute(&ACUTE_BRONCHITIS, 5, 7, (7, 28), &[(&D_ACETAMINOPHEN_160_CHEW, 0.4)],
        &[(&D_APAP_DXM_DOXYLAMINE, 0.3), (&D_ACETAMINOPHEN_325, 0.3)], NO_PROC),
    acute(&OTITIS_MEDIA, 16, 1, (7, 21),
        &[(&D_AMOXICILLIN_250, 0.5), (&D_AMOX_CLAV, 0.15), (&D_CEFDINIR_300, 0.1), (&D_CEFACLOR_250, 0.05)],
        &[(&D_AMOXICILLIN_500, 0.6), (&D_AMOX_CLAV, 0.2)], NO_PROC),
    acute(&STREP_THROAT, 7, 3, (7, 14), STREP_RX_CHILD, STREP_RX_ADULT, NO_PROC),
    acute(&BACTERIAL_SINUSITIS, 2, 3, (10, 21), &[(&D_AMOX_CLAV, 0.5), (&D_CEFUROXIME_250, 0.25)],
        &[(&D_AMOX_CLAV, 0.5), (&D_CEFUROXIME_250, 0.25)], NO_PROC),
    acute(&CHRONIC_SINUSITIS, 0, 2, (90, 365), NONE_RX, &[(&D_AMOX_CLAV, 0.3)], NO_PROC),
    acute(&SINUSITIS, 2, 2, (7, 21), &[(&D_AMOXICILLIN_250, 0.3)], &[(&D_AMOXICILLIN_500, 0.3)], NO_PROC),
    acute(&COUGH, 3, 3, (3, 14), NONE_RX, &[(&D_APAP_DXM_DOXYLAMINE, 0.2)], NO_PROC),
    acute(&FEVER, 5, 1, (2, 5), &[(&D_ACETAMINOPHEN_160_CHEW, 0.6), (&D_IBUPROFEN_100, 0.2)],
        &[(&D_ACETAMINOPHEN_325, 0.5)], NO_PROC),
    acute(&FATIGUE, 0, 2, (14, 60), NONE_RX, NONE_RX, NO_PROC),
    since(acute(&COVID19, 2, 4, (10, 28), APAP_CHILD, APAP_ADULT, NO_PROC), COVID_START),
    since(acute(&LOSS_OF_TASTE, 0, 1, (14, 60), NONE_RX, NONE_RX, NO_PROC), COVID_START),
    acute(&STRESS, 1, 12, (30, 365), NONE_RX, NONE_RX, NO_PROC),
    acute(&SOCIAL_ISOLATION, 0, 4, (60, 720), NONE_RX, NONE_RX, NO_PROC),
    acute(&LIMITED_SOCIAL_CONTACT, 0, 3, (60, 720), NONE_RX, NONE_RX, NO_PROC),
    acute(&SEVERE_ANXIETY, 1, 2, (30, 365), NONE_RX, NONE_RX, &[(&PR_CBT, 0.3)]),
    acute(&RISK_ACTIVITY, 1, 1, (30, 365), NONE_RX, NONE_RX, NO_PROC),
    female(acute(&IPV_VICTIM, 0, 2, (30, 365), NONE_RX, NONE_RX, NO_PROC), 16, 80),
    female(acute(&NORMAL_PREGNANCY, 0, 5, (266, 280), NONE_RX, NONE_RX,
        &[(&PR_FETAL_ULTRASOUND, 0.6), (&PR_FUNDAL_HEIGHT, 0.5), (&PR_FETAL_HEART, 0.5)]), 16, 44),
    female(acute(&MISCARRIAGE, 0, 1, (1, 14), NONE_RX, NONE_RX, NO_PROC), 16, 44),
    female(acute(&CYSTITIS, 1, 3, (5, 10), &[(&D_NITROFURANTOIN, 0.5)],
        &[(&D_NITROFURANTOIN, 0.6), (&D_PHENAZOPYRIDINE, 0.2)], NO_PROC), 5, 120),
    acute(&ANKLE_SPRAIN, 2, 2, (14, 42), SPRAIN_RX_CHILD, SPRAIN_RX_ADULT, NO_PROC),
    acute(&EPIDERMAL_BURN, 1, 1, (7, 21), NONE_RX, NONE_RX, NO_PROC),
    acute(&HYPERTRIGLYCERIDEMIA, 0, 1, (180, 720), NONE_RX, NONE_RX, NO_PROC),
    acute(&METABOLIC_SYNDROME, 0, 1, (365, 730), NONE_RX, NONE_RX, NO_PROC),
];

/// Reasons for emergency-room visits.
#[rustfmt::skip]
static ACUTE_ER: [Acute; 17] = [
    acute(&ANKLE_SPRAIN, 10, 12, (14, 42), SPRAIN_RX_CHILD, SPRAIN_RX_ADULT, NO_PROC),
    acute(&CONCUSSION, 8, 6, (14, 42), APAP_CHILD, APAP_ADULT, NO_PROC),
    acute(&FOREARM_FRACTURE, 8, 5, (42, 84), APAP_CHILD, FRACTURE_RX_ADULT, FRACTURE_PROCS),
    acute(&CLAVICLE_FRACTURE, 4, 2, (42, 84), APAP_CHILD, FRACTURE_RX_ADULT, FRACTURE_PROCS),
    acute(&RIB_FRACTURE, 1, 3, (28, 56), APAP_CHILD, FRACTURE_RX_ADULT, &[(&PR_CHEST_XRAY, 0.9)]),
    ages(acute(&HIP_FRACTURE, 0, 3, (60, 180), NONE_RX,
        &[(&D_PERCOCET, 0.5), (&D_TRAMADOL_50, 0.2)], FRACTURE_PROCS), 60, 120),
    acute(&HAND_LACERATION, 6, 6, (7, 21), NONE_RX, NONE_RX, LACERATION_PROCS),
    acute(&FOOT_LACERATION, 3, 3, (7, 21), NONE_RX, NONE_RX, LACERATION_PROCS),
    acute(&THIGH_LACERATION, 2, 2, (7, 21), NONE_RX, NONE_RX, LACERATION_PROCS),
    acute(&EPIDERMAL_BURN, 3, 3, (7, 21), NONE_RX, NONE_RX, NO_PROC),
    acute(&FEVER, 6, 2, (2, 5), &[(&D_ACETAMINOPHEN_160_CHEW, 0.6)], &[(&D_ACETAMINOPHEN_325, 0.5)], NO_PROC),
    acute(&COUGH, 2, 3, (3, 14), NONE_RX, NONE_RX, &[(&PR_CHEST_XRAY, 0.4)]),
    acute(&ACUTE_BRONCHITIS, 3, 3, (7, 28), APAP_CHILD, APAP_ADULT, &[(&PR_CHEST_XRAY, 0.5)]),
    acute(&STREP_THROAT, 2, 1, (7, 14), STREP_RX_CHILD, STREP_RX_ADULT, NO_PROC),
    since(acute(&COVID19, 2, 6, (10, 28), APAP_CHILD, APAP_ADULT, &[(&PR_CHEST_XRAY, 0.4)]), COVID_START),
    ages(acute(&DRUG_OVERDOSE, 0, 1, (1, 3), NONE_RX, NONE_RX, &[(&PR_OXYGEN_MASK, 0.3)]), 14, 120),
    acute(&SEVERE_ANXIETY, 1, 2, (1, 30), NONE_RX, NONE_RX, NO_PROC),
];

/// Reasons for hospital admissions.
#[rustfmt::skip]
static ACUTE_IP: [Acute; 8] = [
    ages(acute(&HIP_FRACTURE, 0, 4, (60, 180), NONE_RX,
        &[(&D_PERCOCET, 0.6), (&D_FENTANYL_PATCH, 0.1)], FRACTURE_PROCS), 60, 120),
    since(acute(&COVID19, 1, 5, (14, 42), NONE_RX, NONE_RX,
        &[(&PR_OXYGEN_MASK, 0.7), (&PR_PRONE, 0.2)]), COVID_START),
    ages(acute(&CHF, 0, 3, (7, 30), NONE_RX, &[(&D_FUROSEMIDE_40, 0.6)],
        &[(&PR_ECHO, 0.5), (&PR_HF_EDUCATION, 0.4)]), 55, 120),
    ages(acute(&CORONARY_ARTERIOSCLEROSIS, 0, 2, (7, 30), NONE_RX, &[(&D_CLOPIDOGREL_75, 0.6)],
        &[(&PR_ECG, 0.8), (&PR_ECHO, 0.4)]), 45, 120),
    acute(&ANEMIA, 1, 2, (14, 60), NONE_RX, NONE_RX, &[(&PR_TRANSFUSION, 0.4)]),
    acute(&ACUTE_BRONCHITIS, 3, 3, (14, 30), APAP_CHILD, APAP_ADULT,
        &[(&PR_CHEST_XRAY, 0.8), (&PR_SPUTUM, 0.2)]),
    acute(&FEVER, 3, 1, (3, 10), APAP_CHILD, APAP_ADULT, NO_PROC),
    acute(&CONCUSSION, 2, 1, (14, 42), APAP_CHILD, APAP_ADULT, &[(&PR_CHEST_XRAY, 0.2)]),
];

/// Chronic conditions, as bits of `Person::has`.
#[derive(Debug)]
struct Chronic {
    c: &'static Concept,
    /// Not diagnosed before this age.
    min_age: u8,
    /// Alternative first-line drugs (weights) and the chance to get one.
    meds: &'static [(&'static Drug, u32)],
    p_med: f64,
    /// Chance of a second, different drug of the same list.
    p_second: f64,
}

const fn chronic(
    c: &'static Concept,
    min_age: u8,
    meds: &'static [(&'static Drug, u32)],
    p_med: f64,
    p_second: f64,
) -> Chronic {
    Chronic {
        c,
        min_age,
        meds,
        p_med,
        p_second,
    }
}

const HTN: usize = 0;
const HLD: usize = 1;
const T2D: usize = 2;
const CAD: usize = 3;
const HF: usize = 4;
const OA: usize = 5;
const LBP: usize = 6;
const NECK: usize = 7;
const ALZ: usize = 8;
const OSTEO: usize = 9;
const GOUT_: usize = 10;
const RHINITIS: usize = 11;
const ATOPIC: usize = 12;
const ANEMIA_: usize = 13;
const CKD: usize = 14;
const ADHD_: usize = 15;
const RETINOPATHY: usize = 16;
const NEPHROPATHY: usize = 17;

/// Celecoxib and diclofenac share this list so both ingredients have users (query Q21).
const NSAIDS: &[(&Drug, u32)] = &[
    (&D_CELECOXIB_200, 45),
    (&D_DICLOFENAC_75, 25),
    (&D_IBUPROFEN_200, 15),
    (&D_NAPROXEN_220, 15),
];

#[rustfmt::skip]
static CHRONIC: [Chronic; 18] = [
    chronic(&HYPERTENSION, 25, &[(&D_HCTZ_25, 30), (&D_LISINOPRIL_10, 25), (&D_AMLODIPINE_5, 20),
        (&D_LOSARTAN_25, 15), (&D_AMLODIPINE_2_5, 5), (&D_LISINOPRIL_20, 3), (&D_LOSARTAN_50, 2)], 0.85, 0.3),
    chronic(&HYPERLIPIDEMIA, 30, &[(&D_SIMVASTATIN_10, 60), (&D_SIMVASTATIN_20, 40)], 0.75, 0.0),
    chronic(&T2DM, 30, &[(&D_HUMULIN, 1)], 0.35, 0.0),
    chronic(&CORONARY_ARTERIOSCLEROSIS, 45, &[(&D_CLOPIDOGREL_75, 2), (&D_NITROGLYCERIN_SPRAY, 1)], 0.85, 0.4),
    chronic(&CHF, 55, &[(&D_FUROSEMIDE_40, 1), (&D_CARVEDILOL_25, 1)], 0.9, 0.6),
    chronic(&OA_KNEE, 40, NSAIDS, 0.85, 0.0),
    chronic(&CHRONIC_LOW_BACK_PAIN, 20, NSAIDS, 0.8, 0.0),
    chronic(&CHRONIC_NECK_PAIN, 20, NSAIDS, 0.7, 0.0),
    chronic(&ALZHEIMERS, 65, &[(&D_GALANTAMINE_4, 5), (&D_MEMANTINE, 4)], 0.8, 0.0),
    chronic(&OSTEOPOROSIS, 50, &[(&D_ALENDRONATE_10, 1)], 0.7, 0.0),
    chronic(&GOUT, 30, &[], 0.0, 0.0),
    chronic(&ALLERGIC_RHINITIS, 3, &[(&D_LORATADINE_5, 10), (&D_FLUTICASONE_INHALER, 8),
        (&D_ALBUTEROL_INHALER, 6), (&D_EPINEPHRINE_AUTOINJ, 1)], 0.7, 0.3),
    chronic(&ATOPIC_DERMATITIS, 0, &[(&D_HYDROCORTISONE_CREAM, 1)], 0.6, 0.0),
    chronic(&ANEMIA, 0, &[], 0.0, 0.0),
    chronic(&CKD1, 35, &[], 0.0, 0.0),
    chronic(&ADHD, 5, &[], 0.0, 0.0),
    chronic(&DIABETIC_RETINOPATHY, 35, &[], 0.0, 0.0),
    chronic(&DIABETIC_KIDNEY, 35, &[], 0.0, 0.0),
];

/// Chance of having chronic condition `k` by age (years, at the end of follow-up) and sex.
fn prevalence(k: usize, age: f64, male: bool, has: u32) -> f64 {
    let band = |young: f64, mid: f64, old: f64, elderly: f64| {
        if age < 30.0 {
            young
        } else if age < 45.0 {
            mid
        } else if age < 65.0 {
            old
        } else {
            elderly
        }
    };
    match k {
        HTN => band(0.02, 0.12, 0.35, 0.6),
        HLD => band(0.01, 0.10, 0.30, 0.45),
        T2D => band(0.005, 0.05, 0.12, 0.2),
        CAD => band(0.0, 0.01, 0.05, 0.15) * if male { 1.4 } else { 0.7 },
        HF => band(0.0, 0.0, 0.02, 0.07),
        OA => band(0.0, 0.03, 0.12, 0.28),
        LBP => band(0.04, 0.08, 0.1, 0.1),
        NECK => band(0.02, 0.04, 0.05, 0.04),
        ALZ if age >= 75.0 => 0.1,
        OSTEO if !male => band(0.0, 0.0, 0.06, 0.2),
        GOUT_ if male => band(0.0, 0.02, 0.04, 0.06),
        RHINITIS => 0.12,
        ATOPIC => {
            if age < 18.0 {
                0.1
            } else {
                0.02
            }
        }
        ANEMIA_ => {
            if male {
                0.015
            } else {
                0.04
            }
        }
        CKD if has & (1 << T2D) != 0 => 0.25,
        ADHD_ if age < 30.0 => 0.05,
        RETINOPATHY if has & (1 << T2D) != 0 => 0.1,
        NEPHROPATHY if has & (1 << T2D) != 0 => 0.12,
        _ => 0.0,
    }
}

/// Age pyramid: weights of 5-year bands 0-4 .. 95-99, then exactly 100.
const AGE_WEIGHTS: [u32; 21] = [
    570, 600, 640, 650, 640, 680, 690, 660, 630, 600, 620, 640, 630, 550, 450, 310, 200, 120, 60,
    15, 2,
];

/// Precomputed tables shared by all workers.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) seed: u64,
    pub(crate) defect_rate: f64,
    age_cum: Vec<u32>,
    op_child: Vec<u32>,
    op_adult: Vec<u32>,
    er_child: Vec<u32>,
    er_adult: Vec<u32>,
    ip_child: Vec<u32>,
    ip_adult: Vec<u32>,
}

impl Ctx {
    pub(crate) fn new(seed: u64, defect_rate: f64) -> Self {
        let child = |t: &[Acute]| cumulative(t.iter().map(|a| a.w_child));
        let adult = |t: &[Acute]| cumulative(t.iter().map(|a| a.w_adult));
        Ctx {
            seed,
            defect_rate,
            age_cum: cumulative(AGE_WEIGHTS),
            op_child: child(&ACUTE_OP),
            op_adult: adult(&ACUTE_OP),
            er_child: child(&ACUTE_ER),
            er_adult: adult(&ACUTE_ER),
            ip_child: child(&ACUTE_IP),
            ip_adult: adult(&ACUTE_IP),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Visit {
    kind: VisitKind,
    start: i32,
    end: i32,
    start_min: u16,
    end_min: u16,
    /// End of the observation period holding the visit.
    pend: i32,
    gi_bleed: bool,
}

#[derive(Clone, Copy, Debug)]
struct Med {
    d: &'static Drug,
    refill_p: f64,
    /// Index of the visit where it was started (refills come later).
    since: usize,
    /// Stop refilling after this age (contraception).
    max_age: f64,
}

/// Per-worker scratch buffers, reused across persons.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    plan: Vec<Visit>,
    visits: Vec<Visit>,
    meds: Vec<Med>,
}

/// Draws row defects from a stream of its own, so clean rows are identical whatever the rate.
struct Defects {
    rng: Rng,
    rate: f64,
}

impl Defects {
    #[inline]
    fn draw(&mut self, has_end: bool) -> Defect {
        if self.rate <= 0.0 || !self.rng.chance(self.rate) {
            return Defect::None;
        }
        match self.rng.below(if has_end { 5 } else { 4 }) {
            0 => Defect::BadDate,
            1 => Defect::TextInInt,
            2 => Defect::EmptyRequired,
            3 => Defect::OrphanPerson,
            _ => Defect::EndBeforeStart,
        }
    }

    /// The end date to write for a row (defective ends precede the start).
    #[inline]
    fn end(&mut self, defect: Defect, start: i32, end: i32) -> i32 {
        if defect == Defect::EndBeforeStart {
            start - 1 - self.rng.between(0, 29)
        } else {
            end
        }
    }
}

/// Person-level state while generating.
struct Person {
    pid: u64,
    male: bool,
    birth: i32,
    life_end: i32,
    periods: [(i32, i32); 2],
    n_periods: usize,
    has: u32,
    diagnosed: u32,
    /// 0 never, 1 former, 2 current.
    smoker: u8,
    sbp_off: f64,
    hr_off: f64,
    adult_height: f64,
    adult_bmi: f64,
    contraception: Option<&'static Drug>,
    /// Celecoxib (1) and diclofenac (2) first exposures already seen.
    nsaid_checked: u8,
    social: [u8; 5],
}

impl Person {
    #[inline]
    fn age(&self, day: i32) -> f64 {
        f64::from(day - self.birth) / 365.25
    }

    fn period_of(&self, day: i32) -> Option<(i32, i32)> {
        self.periods[..self.n_periods]
            .iter()
            .copied()
            .find(|&(s, e)| s <= day && day <= e)
    }
}

/// Appends all rows of person `pid` to `ch`.
pub(crate) fn generate_person(ctx: &Ctx, pid: u64, ch: &mut Chunk, sc: &mut Scratch) {
    let mut r = Rng::for_person(ctx.seed, 0, pid);
    let mut def = Defects {
        rng: Rng::for_person(ctx.seed, 1, pid),
        rate: ctx.defect_rate,
    };

    // Demographics.
    let male = r.chance(0.49);
    let band = r.weighted(&ctx.age_cum) as i32;
    let age = if band == 20 {
        100
    } else {
        band * 5 + r.between(0, 4)
    };
    let year = REF_YEAR - age;
    let year_len = days_from_civil(year + 1, 1, 1) - days_from_civil(year, 1, 1);
    let birth = days_from_civil(year, 1, 1) + r.below(year_len as u32) as i32;
    let race = match r.below(100) {
        0..70 => 0,
        70..83 => 1,
        83..89 => 2,
        _ => 3,
    };
    let hispanic = r.chance(0.18);
    ch.persons.push(PersonRow {
        pid,
        male,
        birth,
        birth_min: r.below(1440) as u16,
        race,
        hispanic,
    });

    // Death within the last ten years, more likely with age (~1% overall).
    let p_death = match age {
        0..40 => 0.001,
        40..60 => 0.005,
        60..70 => 0.015,
        70..80 => 0.035,
        80..90 => 0.08,
        _ => 0.2,
    };
    let death_lo = (birth + 1).max(REF_DAY - 3652);
    let death = (r.chance(p_death) && death_lo <= REF_DAY).then(|| r.between(death_lo, REF_DAY));
    let life_end = death.unwrap_or(REF_DAY);

    // Observation periods: one, sometimes two with a gap; most longer than a year.
    let obs_end = if r.chance(0.15) {
        life_end - r.between(0, (5 * 365).min(life_end - birth))
    } else {
        life_end
    };
    let len = if r.chance(0.07) {
        r.between(30, 364)
    } else {
        r.between(365, 365 * 22)
    }
    .min(obs_end - birth);
    let obs_start = obs_end - len;
    let mut periods = [(obs_start, obs_end), (0, 0)];
    let mut n_periods = 1;
    if len > 3 * 365 && r.chance(0.18) {
        let gap = r.between(60, 540);
        let split = obs_start + r.between(365, len - gap - 365);
        periods = [(obs_start, split), (split + gap, obs_end)];
        n_periods = 2;
    }
    for &(start, end) in &periods[..n_periods] {
        ch.periods.push(PeriodRow { pid, start, end });
    }

    let mut p = Person {
        pid,
        male,
        birth,
        life_end,
        periods,
        n_periods,
        has: 0,
        diagnosed: 0,
        smoker: 0,
        sbp_off: r.normal(0.0, 7.0),
        hr_off: r.normal(0.0, 6.0),
        adult_height: if male {
            r.normal(176.0, 7.0)
        } else {
            r.normal(163.0, 6.5)
        },
        adult_bmi: r.normal(27.0, 5.0).clamp(16.5, 55.0),
        contraception: None,
        nsaid_checked: 0,
        social: [0; 5],
    };
    let age_end = p.age(obs_end);
    for k in 0..CHRONIC.len() {
        if r.chance(prevalence(k, age_end, male, p.has)) {
            p.has |= 1 << k;
        }
    }
    p.smoker = match r.below(100) {
        0..62 => 0,
        62..84 => 1,
        _ => 2,
    };
    for s in &mut p.social {
        *s = r.below(250) as u8;
    }
    if !male && age_end >= 15.0 && r.chance(0.3) {
        p.contraception = Some(match r.below(4) {
            0 | 1 => &D_NORETHINDRONE_PACK,
            2 => &D_MEDROXYPROGESTERONE,
            _ => &D_ETONOGESTREL_IMPLANT,
        });
    }

    plan_visits(&mut p, &mut r, sc);

    // Events, visit by visit; a visit may schedule a later one (GI bleed after an NSAID).
    sc.meds.clear();
    if p.smoker == 2 && r.chance(0.15) {
        sc.meds.push(Med {
            d: &D_NICOTINE_PATCH,
            refill_p: 0.2,
            since: 0,
            max_age: 120.0,
        });
    }
    let vbase = ch.visits.len() as u32;
    let mut i = 0;
    while i < sc.visits.len() {
        visit_events(ctx, &mut p, &mut r, &mut def, ch, sc, i, vbase + i as u32);
        i += 1;
    }
    for (k, v) in sc.visits.iter().enumerate() {
        let defect = def.draw(true);
        let end = def.end(defect, v.start, v.end);
        ch.visits.push(VisitRow {
            pid,
            kind: v.kind,
            start: v.start,
            end,
            start_min: v.start_min,
            end_min: v.end_min,
            first: k == 0,
            defect,
        });
    }

    if let Some(date) = death {
        let cause = if p.has & (1 << HF) != 0 {
            Some(&CHF)
        } else if p.has & (1 << CAD) != 0 {
            Some(&CORONARY_ARTERIOSCLEROSIS)
        } else if p.has & (1 << ALZ) != 0 {
            Some(&ALZHEIMERS)
        } else {
            None
        };
        ch.deaths.push(DeathRow { pid, date, cause });
    }
}

/// Base visits per year by age.
fn visit_rate(age: f64) -> f64 {
    match age {
        a if a < 2.0 => 5.0,
        a if a < 5.0 => 2.5,
        a if a < 18.0 => 1.2,
        a if a < 45.0 => 1.2,
        a if a < 65.0 => 2.0,
        a if a < 80.0 => 3.0,
        _ => 4.0,
    }
}

/// Fills in times and the end of a visit whose kind, start and period end are set.
fn finish_visit(v: &mut Visit, r: &mut Rng) {
    match v.kind {
        VisitKind::Outpatient => {
            v.end = v.start;
            v.start_min = (480 + r.below(600)) as u16;
            v.end_min = v.start_min + 15 + r.below(45) as u16;
        }
        VisitKind::Emergency => {
            v.start_min = r.below(1440) as u16;
            let m = u32::from(v.start_min) + 60 + r.below(420);
            if m >= 1440 && v.start < v.pend {
                v.end = v.start + 1;
                v.end_min = (m - 1440) as u16;
            } else {
                v.end = v.start;
                v.end_min = m.min(1439) as u16;
            }
        }
        VisitKind::Inpatient => {
            // Length of stay 1-10 days, mostly short.
            let los = 1 + ((-(1.0 - r.unit()).ln() * 2.5) as i32).min(9);
            v.end = (v.start + los).min(v.pend);
            v.start_min = r.below(1440) as u16;
            v.end_min = r.below(1440) as u16;
            if v.end == v.start {
                v.end_min = v.end_min.max(v.start_min);
            }
        }
    }
}

fn plan_visits(p: &mut Person, r: &mut Rng, sc: &mut Scratch) {
    let periods = &p.periods[..p.n_periods];
    let len0 = periods[0].1 - periods[0].0 + 1;
    let total: i32 = periods.iter().map(|&(s, e)| e - s + 1).sum();
    let mid = (periods[0].0 + periods[p.n_periods - 1].1) / 2;
    let frailty = r.normal(-0.2, 0.65).exp();
    let rate = visit_rate(p.age(mid)) * frailty * (1.0 + 0.3 * f64::from(p.has.count_ones()));
    let n = (r.poisson(rate * f64::from(total) / 365.25) as usize).clamp(1, MAX_VISITS / 2);

    sc.plan.clear();
    for _ in 0..n {
        let k = pick_period(r, p.n_periods, len0, total);
        let (s, e) = periods[k];
        let u = r.below(1000);
        let kind = if u < 30 {
            VisitKind::Inpatient
        } else if u < 100 {
            VisitKind::Emergency
        } else {
            VisitKind::Outpatient
        };
        sc.plan.push(Visit {
            kind,
            start: r.between(s, e),
            end: 0,
            start_min: 0,
            end_min: 0,
            pend: e,
            gi_bleed: false,
        });
    }
    sc.plan.sort_by_key(|v| v.start);

    // Walk in time order: no visit starts during an earlier stay; admissions may be followed by
    // a readmission within 30 days of discharge.
    sc.visits.clear();
    let mut busy = i32::MIN;
    let mut i = 0;
    while i < sc.plan.len() {
        let mut v = sc.plan[i];
        i += 1;
        if v.start <= busy {
            v.start = busy + 1;
            if v.start > v.pend {
                continue;
            }
        }
        finish_visit(&mut v, r);
        if v.kind != VisitKind::Outpatient {
            busy = busy.max(v.end);
        }
        sc.visits.push(v);
        if v.kind == VisitKind::Inpatient && r.chance(0.2) {
            let day = v.end + r.between(1, 30);
            if day <= v.pend && sc.plan.len() < MAX_VISITS {
                let pos = i + sc.plan[i..].partition_point(|x| x.start <= day);
                sc.plan.insert(
                    pos,
                    Visit {
                        kind: VisitKind::Inpatient,
                        start: day,
                        end: 0,
                        start_min: 0,
                        end_min: 0,
                        pend: v.pend,
                        gi_bleed: false,
                    },
                );
            }
        }
    }
}

#[inline]
fn pick_period(r: &mut Rng, n_periods: usize, len0: i32, total: i32) -> usize {
    if n_periods == 2 && r.below(total as u32) as i32 >= len0 {
        1
    } else {
        0
    }
}

/// Picks an acute problem eligible for this person at this age and date.
fn pick_acute<'t>(
    r: &mut Rng,
    table: &'t [Acute],
    cum: &[u32],
    p: &Person,
    age: f64,
    day: i32,
) -> Option<&'t Acute> {
    for _ in 0..4 {
        let a = &table[r.weighted(cum)];
        let ok = (a.sex == Sex::Any || !p.male)
            && age >= f64::from(a.min_age)
            && age <= f64::from(a.max_age)
            && day >= a.since;
        if ok {
            return Some(a);
        }
    }
    None
}

/// Everything recorded at visit `i` of the person (chunk-local visit index `vi`).
#[allow(clippy::too_many_arguments)]
fn visit_events(
    ctx: &Ctx,
    p: &mut Person,
    r: &mut Rng,
    def: &mut Defects,
    ch: &mut Chunk,
    sc: &mut Scratch,
    i: usize,
    vi: u32,
) {
    let v = sc.visits[i];
    let d = v.start;
    let age = p.age(d);
    let child = age < 18.0;
    let mut ev = Events {
        pid: p.pid,
        vi,
        d,
        life_end: p.life_end,
        def,
        ch,
    };

    if v.gi_bleed {
        ev.cond(&GI_BLEED, r.between(7, 30));
        ev.lab(&L_HEMOGLOBIN, r.normal(8.6, 1.2));
        ev.lab(&L_HEMATOCRIT, r.normal(26.0, 3.5));
        ev.lab(&L_PLATELETS, r.normal(250.0, 60.0));
        if r.chance(0.35) {
            ev.proc(&PR_TRANSFUSION);
        }
        if r.chance(0.2) {
            ev.proc(&PR_COLONOSCOPY);
        }
    }

    // Acute problem of the visit.
    let (table, cum, p_acute): (&[Acute], &[u32], f64) = match (v.kind, child) {
        (VisitKind::Outpatient, true) => (&ACUTE_OP, &ctx.op_child, 0.45),
        (VisitKind::Outpatient, false) => (&ACUTE_OP, &ctx.op_adult, 0.3),
        (VisitKind::Emergency, true) => (&ACUTE_ER, &ctx.er_child, 0.95),
        (VisitKind::Emergency, false) => (&ACUTE_ER, &ctx.er_adult, 0.95),
        (VisitKind::Inpatient, true) => (&ACUTE_IP, &ctx.ip_child, 0.9),
        (VisitKind::Inpatient, false) => (&ACUTE_IP, &ctx.ip_adult, 0.9),
    };
    let mut febrile = false;
    if !v.gi_bleed
        && r.chance(p_acute)
        && let Some(a) = pick_acute(r, table, cum, p, age, d)
    {
        let days = r.between(a.days.0, a.days.1);
        ev.cond(a.c, days);
        febrile = matches!(
            a.c.id,
            28060 | 4112343 | 372328 | 437663 | 37311061 | 260139
        );
        let rx = if child { a.rx_child } else { a.rx_adult };
        let u = r.unit();
        let mut acc = 0.0;
        for &(drug, pr) in rx {
            acc += pr;
            if u < acc {
                ev.drug(drug);
                check_nsaid(p, r, sc, i, drug);
                break;
            }
        }
        for &(c, pr) in a.procs {
            if r.chance(pr) {
                ev.proc(c);
            }
        }
        if a.c.id == STREP_THROAT.id && r.chance(0.6) {
            ev.meas_novalue(&L_THROAT_CULTURE);
        }
    }

    // Chronic conditions get diagnosed at routine or inpatient visits, then treated.
    if v.kind != VisitKind::Emergency {
        let pending = p.has & !p.diagnosed;
        if pending != 0 {
            for (k, chr) in CHRONIC.iter().enumerate() {
                if pending & (1 << k) == 0 || age < f64::from(chr.min_age) || !r.chance(0.3) {
                    continue;
                }
                p.diagnosed |= 1 << k;
                ev.cond_open(chr.c);
                if chr.meds.is_empty() || !r.chance(chr.p_med) {
                    continue;
                }
                let n = if r.chance(chr.p_second) { 2 } else { 1 };
                for j in 0..n {
                    let total: u32 = chr.meds.iter().map(|m| m.1).sum();
                    let mut x = r.below(total);
                    let mut pick = chr.meds[0].0;
                    for &(drug, w) in chr.meds {
                        if x < w {
                            pick = drug;
                            break;
                        }
                        x -= w;
                    }
                    if j == 1 && sc.meds.iter().any(|m| m.d.c.id == pick.c.id) {
                        continue;
                    }
                    ev.drug(pick);
                    check_nsaid(p, r, sc, i, pick);
                    let refill_p = if matches!(k, OA | LBP | NECK) {
                        0.3
                    } else {
                        0.45
                    };
                    sc.meds.push(Med {
                        d: pick,
                        refill_p,
                        since: i,
                        max_age: 120.0,
                    });
                }
            }
        }
        if let Some(c) = p.contraception
            && (15.0..45.0).contains(&age)
        {
            p.contraception = None;
            ev.drug(c);
            if c.c.id == ETONOGESTREL_IMPLANT.id {
                ev.proc(&PR_CONTRACEPTIVE_INSERT);
            }
            sc.meds.push(Med {
                d: c,
                refill_p: 0.5,
                since: i,
                max_age: 50.0,
            });
        }
    }

    // Refills of ongoing treatments at later routine visits.
    if v.kind == VisitKind::Outpatient {
        for k in 0..sc.meds.len() {
            let m = sc.meds[k];
            if m.since < i && age < m.max_age && r.chance(m.refill_p) {
                ev.drug(m.d);
                check_nsaid(p, r, sc, i, m.d);
            }
        }
    }

    routine_procedures(p, r, &mut ev, v.kind, age, !sc.meds.is_empty());
    vitals(p, r, &mut ev, v.kind, age, febrile);
    labs(p, r, &mut ev, v.kind, age, v.gi_bleed);
    if v.kind == VisitKind::Outpatient {
        observations(p, r, &mut ev, age);
    }
}

/// On the first exposure to celecoxib or diclofenac, some persons get a GI bleed within a year
/// (deliberately frequent so that cohort queries have cases even at 1,000 persons).
fn check_nsaid(p: &mut Person, r: &mut Rng, sc: &mut Scratch, i: usize, drug: &Drug) {
    let bit = match drug.c.id {
        id if id == CELECOXIB_200.id => 1,
        id if id == DICLOFENAC_75.id => 2,
        _ => return,
    };
    if p.nsaid_checked & bit != 0 {
        return;
    }
    p.nsaid_checked |= bit;
    if !r.chance(0.25) {
        return;
    }
    let day = sc.visits[i].start + r.between(7, 330);
    let Some((_, pend)) = p.period_of(day) else {
        return;
    };
    if day > p.life_end || sc.visits.len() >= MAX_VISITS {
        return;
    }
    let pos = i + 1 + sc.visits[i + 1..].partition_point(|x| x.start <= day);
    let prev = sc.visits[pos - 1];
    if prev.kind != VisitKind::Outpatient && prev.end >= day {
        return;
    }
    let mut v = Visit {
        kind: if r.chance(0.4) {
            VisitKind::Inpatient
        } else {
            VisitKind::Emergency
        },
        start: day,
        end: day,
        start_min: 0,
        end_min: 0,
        pend,
        gi_bleed: true,
    };
    finish_visit(&mut v, r);
    sc.visits.insert(pos, v);
}

/// Row sink for one visit.
struct Events<'a> {
    pid: u64,
    vi: u32,
    d: i32,
    life_end: i32,
    def: &'a mut Defects,
    ch: &'a mut Chunk,
}

impl Events<'_> {
    fn cond(&mut self, c: &'static Concept, days: i32) {
        let defect = self.def.draw(true);
        let end = self
            .def
            .end(defect, self.d, (self.d + days).min(self.life_end));
        self.ch.conds.push(CondRow {
            pid: self.pid,
            visit: self.vi,
            c,
            start: self.d,
            end,
            defect,
        });
    }

    /// A chronic condition: no end date.
    fn cond_open(&mut self, c: &'static Concept) {
        let defect = self.def.draw(true);
        let end = self.def.end(defect, self.d, NO_DATE);
        self.ch.conds.push(CondRow {
            pid: self.pid,
            visit: self.vi,
            c,
            start: self.d,
            end,
            defect,
        });
    }

    fn drug(&mut self, d: &'static Drug) {
        let defect = self.def.draw(true);
        let natural = (self.d + i32::from(d.days) - 1)
            .min(self.life_end)
            .max(self.d);
        let end = self.def.end(defect, self.d, natural);
        self.ch.drugs.push(DrugRow {
            pid: self.pid,
            visit: self.vi,
            d,
            start: self.d,
            end,
            defect,
        });
    }

    fn proc(&mut self, c: &'static Concept) {
        let defect = self.def.draw(true);
        let end = self.def.end(defect, self.d, NO_DATE);
        self.ch.procs.push(ProcRow {
            pid: self.pid,
            visit: self.vi,
            c,
            date: self.d,
            end,
            defect,
        });
    }

    fn lab(&mut self, lab: &'static Lab, x: f64) {
        let scale = [1.0, 10.0, 100.0][usize::from(lab.dec)];
        let value = (x.clamp(lab.min, lab.max) * scale).round() as i32;
        self.meas(lab, value);
    }

    fn meas_novalue(&mut self, lab: &'static Lab) {
        self.meas(lab, NO_VALUE);
    }

    fn meas(&mut self, lab: &'static Lab, value: i32) {
        let defect = self.def.draw(false);
        self.ch.meas.push(MeasRow {
            pid: self.pid,
            visit: self.vi,
            lab,
            date: self.d,
            value,
            defect,
        });
    }

    fn obs(&mut self, c: &'static Concept, num: i32, text: &'static str) {
        let defect = self.def.draw(false);
        self.ch.obs.push(ObsRow {
            pid: self.pid,
            visit: self.vi,
            c,
            date: self.d,
            num,
            text,
            defect,
        });
    }
}

pub(crate) static L_THROAT_CULTURE: Lab = Lab {
    c: &M_THROAT_CULTURE,
    unit: None,
    mean: 0.0,
    sd: 0.0,
    min: 0.0,
    max: 0.0,
    dec: 0,
    range: None,
};
pub(crate) static L_DEPRESSION_SCREEN: Lab = Lab {
    c: &M_DEPRESSION_SCREEN,
    ..L_THROAT_CULTURE
};

fn routine_procedures(
    p: &Person,
    r: &mut Rng,
    ev: &mut Events<'_>,
    kind: VisitKind,
    age: f64,
    on_meds: bool,
) {
    let has = |k: usize| p.has & (1 << k) != 0;
    match kind {
        VisitKind::Outpatient => {
            let rules: [(&'static Concept, bool, f64); 19] = [
                (&PR_SOCIAL_NEEDS, age >= 18.0, 0.12),
                (&PR_SUBSTANCE_USE, age >= 12.0, 0.08),
                (&PR_MED_RECONCILIATION, on_meds, 0.2),
                (&PR_ANXIETY_ASSESSMENT, age >= 12.0, 0.05),
                (&PR_CRAFFT, (12.0..22.0).contains(&age), 0.12),
                (&PR_ANTICIPATORY_GUIDANCE, age < 18.0, 0.15),
                (&PR_PHYSICAL_EXAM, true, 0.04),
                (&PR_BRIEF_EXAM, true, 0.02),
                (&PR_REVIEW_OF_SYSTEMS, true, 0.02),
                (&PR_HEALTH_EDUCATION, true, 0.02),
                (&PR_DTP_VACCINE, age < 7.0, 0.12),
                (&PR_IM_INJECTION, true, 0.02),
                (&PR_COLONOSCOPY, age >= 50.0, 0.01),
                (&PR_PAP_SMEAR, !p.male && (21.0..66.0).contains(&age), 0.03),
                (&PR_SC_IMMUNOTHERAPY, has(RHINITIS), 0.12),
                (&PR_ALLERGY_SCREEN, has(RHINITIS), 0.04),
                (&PR_ECHO, has(HF) || has(CAD), 0.08),
                (&PR_HF_EDUCATION, has(HF), 0.08),
                (&PR_BONE_DENSITY, has(OSTEO), 0.05),
            ];
            for (c, ok, pr) in rules {
                if ok && r.chance(pr) {
                    ev.proc(c);
                }
            }
            if (has(CAD) || (has(HTN) && age >= 50.0)) && r.chance(0.04) {
                ev.proc(&PR_ECG);
            }
            if age >= 65.0 && r.chance(0.08) {
                ev.proc(&PR_MORSE_FALL);
                ev.obs(&O_FALL_RISK_TOTAL, r.below(20) as i32 * 5, "");
            }
            if age >= 18.0 && r.chance(0.04) {
                ev.proc(&PR_AUDIT_C);
                let n = r.poisson(if p.smoker == 2 { 3.5 } else { 1.5 }).min(12);
                ev.obs(&O_AUDIT_C, n as i32, "");
            }
        }
        VisitKind::Emergency => {
            if age >= 18.0 && r.chance(0.15) {
                ev.proc(&PR_ECG);
            }
        }
        VisitKind::Inpatient => {
            let rules: [(&'static Concept, f64); 5] = [
                (&PR_CHEST_XRAY, 0.3),
                (&PR_ECG, 0.35),
                (&PR_OXYGEN_MASK, 0.15),
                (&PR_MED_RECONCILIATION, 0.5),
                (&PR_TRANSFUSION, 0.03),
            ];
            for (c, pr) in rules {
                if r.chance(pr) {
                    ev.proc(c);
                }
            }
        }
    }
}

/// Piecewise-linear interpolation over `(x, y)` knots (clamped at the ends).
fn interp(knots: &[(f64, f64)], x: f64) -> f64 {
    let (first, last) = (knots[0], knots[knots.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    let k = knots.partition_point(|k| k.0 <= x);
    let (a, b) = (knots[k - 1], knots[k]);
    a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
}

const HEIGHT_FRACTION: [(f64, f64); 11] = [
    (0.0, 0.30),
    (1.0, 0.44),
    (2.0, 0.51),
    (4.0, 0.60),
    (6.0, 0.68),
    (8.0, 0.75),
    (10.0, 0.81),
    (12.0, 0.88),
    (14.0, 0.94),
    (16.0, 0.98),
    (18.0, 1.0),
];
const CHILD_BMI: [(f64, f64); 9] = [
    (0.0, 13.5),
    (0.5, 17.0),
    (1.0, 17.2),
    (2.0, 16.3),
    (5.0, 15.4),
    (8.0, 16.0),
    (12.0, 18.0),
    (16.0, 20.5),
    (18.0, 22.0),
];

fn vitals(p: &Person, r: &mut Rng, ev: &mut Events<'_>, kind: VisitKind, age: f64, fever: bool) {
    let pr = match kind {
        VisitKind::Outpatient => 0.55,
        VisitKind::Emergency => 0.9,
        VisitKind::Inpatient => 1.0,
    };
    if !r.chance(pr) {
        return;
    }
    let acute_care = kind != VisitKind::Outpatient;
    let htn = p.has & (1 << HTN) != 0;
    if age >= 3.0 {
        let (sbp_mu, dbp_mu) = if age < 18.0 {
            (92.0 + 1.3 * age, 55.0 + 1.0 * age)
        } else {
            let a = age - 18.0;
            let h = if htn { 1.0 } else { 0.0 };
            (
                112.0 + 0.35 * a + p.sbp_off + 24.0 * h,
                72.0 + 0.1 * a + 0.5 * p.sbp_off + 11.0 * h,
            )
        };
        let sbp = r.normal(sbp_mu, 9.0);
        let dbp = r.normal(dbp_mu, 6.0).min(sbp - 20.0);
        ev.lab(&L_SBP, sbp);
        ev.lab(&L_DBP, dbp);
    }
    let hr_mu = interp(
        &[(0.0, 130.0), (2.0, 110.0), (6.0, 95.0), (14.0, 78.0)],
        age,
    );
    ev.lab(
        &L_HEART_RATE,
        r.normal(hr_mu + p.hr_off + if fever { 12.0 } else { 0.0 }, 8.0),
    );
    if acute_care || r.chance(0.15) {
        let rr = interp(&[(0.0, 35.0), (2.0, 26.0), (6.0, 20.0), (14.0, 15.0)], age);
        ev.lab(&L_RESP_RATE, r.normal(rr, 2.0));
    }
    let height = p.adult_height * interp(&HEIGHT_FRACTION, age);
    let bmi = if age < 18.0 {
        interp(&CHILD_BMI, age) * (1.0 + (p.adult_bmi - 27.0) / 60.0)
    } else {
        p.adult_bmi + 0.1 * (age.min(65.0) - 40.0)
    };
    let weight = r.normal(bmi * (height / 100.0).powi(2), 0.6 + height / 200.0);
    ev.lab(&L_WEIGHT, weight);
    if age < 20.0 || r.chance(0.15) {
        ev.lab(&L_HEIGHT, r.normal(height, 0.6));
    }
    if age >= 2.0 {
        ev.lab(&L_BMI, weight / (height / 100.0).powi(2));
    }
    if acute_care || fever || r.chance(0.1) {
        let t = if fever {
            r.normal(38.4, 0.5)
        } else {
            r.normal(36.9, 0.3)
        };
        ev.lab(&L_BODY_TEMP, t);
    }
    if age >= 5.0 && (kind == VisitKind::Emergency || r.chance(0.15)) {
        let mu = if kind == VisitKind::Emergency {
            5.0
        } else {
            1.5
        };
        ev.lab(&L_PAIN, r.normal(mu, 2.0).round());
    }
    if kind == VisitKind::Inpatient && r.chance(0.6) {
        ev.lab(&L_OXYGEN_SAT, r.normal(95.0, 2.5));
    }
}

fn labs(p: &Person, r: &mut Rng, ev: &mut Events<'_>, kind: VisitKind, age: f64, gi: bool) {
    let has = |k: usize| p.has & (1 << k) != 0;
    let adult = age >= 18.0;
    let (p_bmp, p_cbc) = match kind {
        VisitKind::Outpatient => (if adult { 0.07 } else { 0.01 }, 0.04),
        VisitKind::Emergency => (0.3, 0.25),
        VisitKind::Inpatient => (0.9, 0.9),
    };
    if r.chance(p_bmp) {
        for &lab in BMP_PANEL {
            let x = match lab.c.id {
                id if id == M_GLUCOSE.id && has(T2D) => r.normal(165.0, 40.0),
                id if id == M_CREATININE.id && (has(CKD) || age >= 70.0) => r.normal(1.4, 0.4),
                _ => r.normal(lab.mean, lab.sd),
            };
            ev.lab(lab, x);
        }
    }
    let p_lipid = if has(HLD) {
        0.15
    } else if age >= 30.0 {
        0.04
    } else {
        0.0
    };
    if kind == VisitKind::Outpatient && r.chance(p_lipid) {
        let h = if has(HLD) { 1.0 } else { 0.0 };
        let chol = r.normal(185.0 + 45.0 * h, 28.0);
        let hdl = r.normal(if p.male { 48.0 } else { 58.0 }, 12.0);
        let tg = r.normal(120.0 + 60.0 * h, 40.0);
        ev.lab(&L_CHOLESTEROL, chol);
        ev.lab(&L_TRIGLYCERIDE, tg);
        ev.lab(&L_LDL, (chol - hdl - tg / 5.0).max(30.0));
        ev.lab(&L_HDL, hdl);
    }
    if !gi && r.chance(p_cbc) {
        for &lab in CBC_PANEL {
            let x = match lab.c.id {
                id if id == M_HEMOGLOBIN.id => {
                    let base = if p.male { 15.0 } else { 13.5 };
                    r.normal(if has(ANEMIA_) { base - 3.0 } else { base }, 1.0)
                }
                _ => r.normal(lab.mean, lab.sd),
            };
            ev.lab(lab, x);
        }
    }
    let p_a1c = if has(T2D) {
        0.3
    } else if age >= 40.0 {
        0.02
    } else {
        0.0
    };
    if kind == VisitKind::Outpatient && r.chance(p_a1c) {
        let x = if has(T2D) {
            r.normal(7.8, 1.1)
        } else {
            r.normal(5.4, 0.35)
        };
        ev.lab(&L_HBA1C, x);
    }
}

const SMOKING: [&str; 3] = [
    "Never smoked tobacco (finding)",
    "Ex-smoker (finding)",
    "Smokes tobacco daily (finding)",
];
const HOUSING: [&str; 3] = [
    "I have housing",
    "I do not have housing (staying with others or in a shelter)",
    "I choose not to answer this question",
];
const EMPLOYMENT: [&str; 4] = [
    "Full-time work",
    "Part-time or temporary work",
    "Unemployed",
    "Otherwise unemployed but not seeking work",
];
const EDUCATION: [&str; 4] = [
    "Less than high school degree",
    "High school diploma or GED",
    "More than high school",
    "I choose not to answer this question",
];
const INSURANCE: [&str; 5] = [
    "Private insurance",
    "Medicare",
    "Medicaid",
    "None/uninsured",
    "Other public insurance (not CHIP)",
];
const LANGUAGE: [&str; 3] = ["English", "Spanish", "Other"];
const STRESS_LEVEL: [&str; 5] = [
    "Not at all",
    "A little bit",
    "Somewhat",
    "Quite a bit",
    "Very much",
];

/// Every free-text value we write; the writer does not quote, so none may need quoting.
#[cfg(test)]
pub(crate) fn all_texts() -> impl Iterator<Item = &'static str> {
    SMOKING
        .iter()
        .chain(&HOUSING)
        .chain(&EMPLOYMENT)
        .chain(&EDUCATION)
        .chain(&INSURANCE)
        .chain(&LANGUAGE)
        .chain(&STRESS_LEVEL)
        .copied()
}

/// A stable per-person answer: mostly the first options, a few the rarer ones.
fn answer(seed: u8, n: usize) -> usize {
    let x = usize::from(seed);
    match x {
        0..150 => 0,
        _ => 1 + (x - 150) % (n - 1),
    }
}

fn observations(p: &Person, r: &mut Rng, ev: &mut Events<'_>, age: f64) {
    let adult = age >= 18.0;
    if age >= 14.0 && r.chance(0.25) {
        ev.obs(&O_SMOKING, NO_VALUE, SMOKING[usize::from(p.smoker)]);
    }
    if age >= 12.0 && r.chance(0.12) {
        let phq2 = r.poisson(0.8).min(6) as i32;
        ev.obs(&O_PHQ2, phq2, "");
        ev.meas_novalue(&L_DEPRESSION_SCREEN);
        if phq2 >= 3 {
            ev.obs(&O_PHQ9, r.poisson(9.0).min(27) as i32, "");
        }
    }
    if age >= 12.0 && r.chance(0.06) {
        ev.obs(&O_GAD7, r.poisson(3.0).min(21) as i32, "");
    }
    if adult && r.chance(0.03) {
        ev.obs(&O_DAST10, r.poisson(0.5).min(10) as i32, "");
    }
    if age >= 5.0 && r.chance(0.08) {
        ev.obs(&O_PAIN, r.poisson(2.0).min(10) as i32, "");
    }
    if !adult {
        return;
    }
    if r.chance(0.03) {
        ev.obs(
            &O_HOUSING,
            NO_VALUE,
            HOUSING[answer(p.social[0], HOUSING.len())],
        );
    }
    if age < 70.0 && r.chance(0.03) {
        let k = answer(p.social[1], EMPLOYMENT.len());
        ev.obs(&O_EMPLOYMENT, NO_VALUE, EMPLOYMENT[k]);
        ev.obs(
            match k {
                0 => &O_FULL_TIME,
                1 => &O_PART_TIME,
                _ => &O_NOT_IN_LABOR_FORCE,
            },
            NO_VALUE,
            "",
        );
    }
    if r.chance(0.02) {
        let k = (usize::from(p.social[2]) * EDUCATION.len()) / 250;
        ev.obs(&O_EDUCATION, NO_VALUE, EDUCATION[k]);
    }
    if r.chance(0.02) {
        let k = if age >= 65.0 {
            1
        } else {
            answer(p.social[3], INSURANCE.len())
        };
        ev.obs(&O_INSURANCE, NO_VALUE, INSURANCE[k]);
    }
    if r.chance(0.02) {
        ev.obs(
            &O_LANGUAGE,
            NO_VALUE,
            LANGUAGE[answer(p.social[4], LANGUAGE.len())],
        );
    }
    if r.chance(0.03) {
        ev.obs(&O_STRESS_LEVEL, NO_VALUE, r.pick(&STRESS_LEVEL));
    }
}
