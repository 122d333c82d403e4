//! The small slice of the OMOP standard vocabularies the generator uses.
//!
//! Concept ids, names and codes are public OMOP vocabulary facts (SNOMED, RxNorm, LOINC, UCUM
//! and the OMOP-defined vocabularies). The selection and the weights in `model.rs` are our own.

#[derive(Debug)]
pub(crate) struct Concept {
    pub(crate) id: u32,
    pub(crate) name: &'static str,
    pub(crate) domain: &'static str,
    pub(crate) vocabulary: &'static str,
    pub(crate) class: &'static str,
    pub(crate) code: &'static str,
    pub(crate) standard: bool,
}

const fn c(
    id: u32,
    name: &'static str,
    domain: &'static str,
    vocabulary: &'static str,
    class: &'static str,
    code: &'static str,
) -> Concept {
    Concept {
        id,
        name,
        domain,
        vocabulary,
        class,
        code,
        standard: true,
    }
}

/// A prescribable product with its usual dispensing.
#[derive(Debug)]
pub(crate) struct Drug {
    pub(crate) c: &'static Concept,
    pub(crate) days: u16,
    pub(crate) qty: u16,
    pub(crate) refills: u8,
    /// Set when the ingredient is emitted to `concept_ancestor.csv`.
    pub(crate) ingredient: Option<&'static Concept>,
}

const fn drug(
    c: &'static Concept,
    days: u16,
    qty: u16,
    refills: u8,
    ingredient: Option<&'static Concept>,
) -> Drug {
    Drug {
        c,
        days,
        qty,
        refills,
        ingredient,
    }
}

// Chronic medications (refilled at follow-up visits).
pub(crate) static D_HCTZ_25: Drug = drug(&HCTZ_25, 90, 90, 3, None);
pub(crate) static D_LISINOPRIL_10: Drug = drug(&LISINOPRIL_10, 90, 90, 3, Some(&ING_LISINOPRIL));
pub(crate) static D_LISINOPRIL_20: Drug = drug(&LISINOPRIL_20, 90, 90, 3, Some(&ING_LISINOPRIL));
pub(crate) static D_AMLODIPINE_2_5: Drug = drug(&AMLODIPINE_2_5, 90, 90, 3, None);
pub(crate) static D_AMLODIPINE_5: Drug = drug(&AMLODIPINE_5, 90, 90, 3, None);
pub(crate) static D_LOSARTAN_25: Drug = drug(&LOSARTAN_25, 90, 90, 3, None);
pub(crate) static D_LOSARTAN_50: Drug = drug(&LOSARTAN_50, 90, 90, 3, None);
pub(crate) static D_SIMVASTATIN_10: Drug = drug(&SIMVASTATIN_10, 90, 90, 3, None);
pub(crate) static D_SIMVASTATIN_20: Drug = drug(&SIMVASTATIN_20, 90, 90, 3, None);
pub(crate) static D_HUMULIN: Drug = drug(&HUMULIN, 30, 10, 5, None);
pub(crate) static D_CLOPIDOGREL_75: Drug = drug(&CLOPIDOGREL_75, 90, 90, 3, None);
pub(crate) static D_NITROGLYCERIN_SPRAY: Drug = drug(&NITROGLYCERIN_SPRAY, 90, 1, 1, None);
pub(crate) static D_FUROSEMIDE_40: Drug = drug(&FUROSEMIDE_40, 90, 90, 3, None);
pub(crate) static D_CARVEDILOL_25: Drug = drug(&CARVEDILOL_25, 90, 180, 3, None);
pub(crate) static D_ALBUTEROL_INHALER: Drug = drug(&ALBUTEROL_INHALER, 30, 1, 2, None);
pub(crate) static D_FLUTICASONE_INHALER: Drug = drug(&FLUTICASONE_INHALER, 30, 1, 5, None);
pub(crate) static D_LORATADINE_5: Drug = drug(&LORATADINE_5, 30, 30, 2, None);
pub(crate) static D_EPINEPHRINE_AUTOINJ: Drug = drug(&EPINEPHRINE_AUTOINJ, 365, 2, 0, None);
pub(crate) static D_GALANTAMINE_4: Drug = drug(&GALANTAMINE_4, 90, 180, 3, None);
pub(crate) static D_MEMANTINE: Drug = drug(&MEMANTINE, 30, 360, 5, None);
pub(crate) static D_ALENDRONATE_10: Drug = drug(&ALENDRONATE_10, 90, 90, 3, None);
pub(crate) static D_NORETHINDRONE_PACK: Drug = drug(&NORETHINDRONE_PACK, 84, 3, 3, None);
pub(crate) static D_MEDROXYPROGESTERONE: Drug = drug(&MEDROXYPROGESTERONE, 90, 1, 0, None);
pub(crate) static D_ETONOGESTREL_IMPLANT: Drug = drug(&ETONOGESTREL_IMPLANT, 365, 1, 0, None);
pub(crate) static D_HYDROCORTISONE_CREAM: Drug = drug(&HYDROCORTISONE_CREAM, 30, 1, 1, None);
pub(crate) static D_NICOTINE_PATCH: Drug = drug(&NICOTINE_PATCH, 28, 28, 1, None);
// Pain.
pub(crate) static D_CELECOXIB_200: Drug = drug(&CELECOXIB_200, 30, 30, 2, Some(&ING_CELECOXIB));
pub(crate) static D_DICLOFENAC_75: Drug = drug(&DICLOFENAC_75, 30, 60, 2, Some(&ING_DICLOFENAC));
pub(crate) static D_IBUPROFEN_200: Drug = drug(&IBUPROFEN_200, 10, 30, 0, Some(&ING_IBUPROFEN));
pub(crate) static D_IBUPROFEN_100: Drug = drug(&IBUPROFEN_100, 7, 21, 0, Some(&ING_IBUPROFEN));
pub(crate) static D_NAPROXEN_220: Drug = drug(&NAPROXEN_220, 10, 20, 0, None);
pub(crate) static D_ACETAMINOPHEN_325: Drug = drug(&ACETAMINOPHEN_325, 10, 40, 0, None);
pub(crate) static D_ACETAMINOPHEN_160_CHEW: Drug = drug(&ACETAMINOPHEN_160_CHEW, 5, 20, 0, None);
pub(crate) static D_APAP_DXM_DOXYLAMINE: Drug = drug(&APAP_DXM_DOXYLAMINE, 7, 240, 0, None);
pub(crate) static D_TRAMADOL_50: Drug = drug(&TRAMADOL_50, 14, 56, 0, None);
pub(crate) static D_APAP_HYDROCODONE: Drug = drug(&APAP_HYDROCODONE, 5, 20, 0, None);
pub(crate) static D_PERCOCET: Drug = drug(&PERCOCET, 5, 20, 0, None);
pub(crate) static D_FENTANYL_PATCH: Drug = drug(&FENTANYL_PATCH, 30, 10, 0, None);
// Anti-infectives and other short courses.
pub(crate) static D_PENICILLIN_V_500: Drug =
    drug(&PENICILLIN_V_500, 10, 20, 0, Some(&ING_PENICILLIN_V));
pub(crate) static D_PENICILLIN_V_250: Drug =
    drug(&PENICILLIN_V_250, 10, 30, 0, Some(&ING_PENICILLIN_V));
pub(crate) static D_AMOXICILLIN_500: Drug = drug(&AMOXICILLIN_500, 10, 30, 0, None);
pub(crate) static D_AMOXICILLIN_250: Drug = drug(&AMOXICILLIN_250, 10, 30, 0, None);
pub(crate) static D_AMOX_CLAV: Drug = drug(&AMOX_CLAV, 10, 20, 0, None);
pub(crate) static D_CEFUROXIME_250: Drug = drug(&CEFUROXIME_250, 10, 20, 0, Some(&ING_CEFUROXIME));
pub(crate) static D_CEFACLOR_250: Drug = drug(&CEFACLOR_250, 10, 30, 0, Some(&ING_CEFACLOR));
pub(crate) static D_CEFDINIR_300: Drug = drug(&CEFDINIR_300, 10, 20, 0, Some(&ING_CEFDINIR));
pub(crate) static D_NITROFURANTOIN: Drug = drug(&NITROFURANTOIN, 7, 140, 0, None);
pub(crate) static D_PHENAZOPYRIDINE: Drug = drug(&PHENAZOPYRIDINE, 3, 6, 0, None);

/// Drugs with an ingredient row in `concept_ancestor.csv` (ancestor ingredient, descendant).
pub(crate) static WITH_INGREDIENT: &[&Drug] = &[
    &D_LISINOPRIL_10,
    &D_LISINOPRIL_20,
    &D_CELECOXIB_200,
    &D_DICLOFENAC_75,
    &D_IBUPROFEN_200,
    &D_IBUPROFEN_100,
    &D_PENICILLIN_V_500,
    &D_PENICILLIN_V_250,
    &D_CEFUROXIME_250,
    &D_CEFACLOR_250,
    &D_CEFDINIR_300,
];

/// A numeric measurement: distribution (clamped) and how it is written.
#[derive(Debug)]
pub(crate) struct Lab {
    pub(crate) c: &'static Concept,
    pub(crate) unit: Option<&'static Concept>,
    pub(crate) mean: f64,
    pub(crate) sd: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// Decimal places of `value_as_number`.
    pub(crate) dec: u8,
    /// Reference range, already rendered.
    pub(crate) range: Option<(&'static str, &'static str)>,
}

#[allow(clippy::too_many_arguments)]
const fn lab(
    c: &'static Concept,
    unit: Option<&'static Concept>,
    mean: f64,
    sd: f64,
    min: f64,
    max: f64,
    dec: u8,
    range: Option<(&'static str, &'static str)>,
) -> Lab {
    Lab {
        c,
        unit,
        mean,
        sd,
        min,
        max,
        dec,
        range,
    }
}

// Vital signs: the mean/sd are population defaults; persons get their own baselines.
pub(crate) static L_SBP: Lab = lab(&M_SBP, Some(&U_MMHG), 122.0, 14.0, 70.0, 230.0, 0, None);
pub(crate) static L_DBP: Lab = lab(&M_DBP, Some(&U_MMHG), 78.0, 9.0, 40.0, 140.0, 0, None);
pub(crate) static L_HEART_RATE: Lab = lab(
    &M_HEART_RATE,
    Some(&U_PER_MIN),
    76.0,
    11.0,
    40.0,
    190.0,
    0,
    None,
);
pub(crate) static L_RESP_RATE: Lab = lab(
    &M_RESP_RATE,
    Some(&U_PER_MIN),
    15.0,
    2.0,
    8.0,
    40.0,
    0,
    None,
);
pub(crate) static L_WEIGHT: Lab = lab(&M_WEIGHT, Some(&U_KG), 75.0, 15.0, 1.5, 250.0, 1, None);
pub(crate) static L_HEIGHT: Lab = lab(&M_HEIGHT, Some(&U_CM), 170.0, 9.0, 40.0, 215.0, 1, None);
pub(crate) static L_BMI: Lab = lab(&M_BMI, Some(&U_KG_M2), 26.5, 5.0, 10.0, 70.0, 1, None);
pub(crate) static L_BODY_TEMP: Lab = lab(
    &M_BODY_TEMP,
    Some(&U_CELSIUS),
    36.9,
    0.3,
    34.5,
    42.0,
    1,
    None,
);
pub(crate) static L_PAIN: Lab = lab(&M_PAIN, None, 1.5, 1.8, 0.0, 10.0, 0, None);
pub(crate) static L_OXYGEN_SAT: Lab = lab(
    &M_OXYGEN_SAT,
    Some(&U_PERCENT),
    96.5,
    2.0,
    80.0,
    100.0,
    1,
    Some(("95", "100")),
);
// Laboratory panels.
pub(crate) static L_GLUCOSE: Lab = lab(
    &M_GLUCOSE,
    Some(&U_MG_DL),
    92.0,
    12.0,
    50.0,
    450.0,
    1,
    Some(("70", "99")),
);
pub(crate) static L_UREA: Lab = lab(
    &M_UREA,
    Some(&U_MG_DL),
    14.0,
    4.0,
    4.0,
    80.0,
    1,
    Some(("7", "20")),
);
pub(crate) static L_CREATININE: Lab = lab(
    &M_CREATININE,
    Some(&U_MG_DL),
    0.95,
    0.2,
    0.3,
    8.0,
    2,
    Some(("0.6", "1.3")),
);
pub(crate) static L_CALCIUM: Lab = lab(
    &M_CALCIUM,
    Some(&U_MG_DL),
    9.4,
    0.4,
    7.5,
    11.5,
    1,
    Some(("8.5", "10.2")),
);
pub(crate) static L_SODIUM: Lab = lab(
    &M_SODIUM,
    Some(&U_MMOL_L),
    140.0,
    2.5,
    125.0,
    155.0,
    0,
    Some(("136", "145")),
);
pub(crate) static L_POTASSIUM: Lab = lab(
    &M_POTASSIUM,
    Some(&U_MMOL_L),
    4.3,
    0.4,
    2.8,
    6.5,
    1,
    Some(("3.5", "5.1")),
);
pub(crate) static L_CHLORIDE: Lab = lab(
    &M_CHLORIDE,
    Some(&U_MMOL_L),
    104.0,
    3.0,
    90.0,
    120.0,
    0,
    Some(("98", "107")),
);
pub(crate) static L_CO2: Lab = lab(
    &M_CO2,
    Some(&U_MMOL_L),
    25.0,
    2.5,
    15.0,
    35.0,
    0,
    Some(("22", "29")),
);
pub(crate) static L_CHOLESTEROL: Lab = lab(
    &M_CHOLESTEROL,
    Some(&U_MG_DL),
    188.0,
    30.0,
    100.0,
    400.0,
    0,
    Some(("0", "200")),
);
pub(crate) static L_TRIGLYCERIDE: Lab = lab(
    &M_TRIGLYCERIDE,
    Some(&U_MG_DL),
    130.0,
    45.0,
    35.0,
    800.0,
    0,
    Some(("0", "150")),
);
pub(crate) static L_LDL: Lab = lab(
    &M_LDL,
    Some(&U_MG_DL),
    110.0,
    28.0,
    30.0,
    300.0,
    0,
    Some(("0", "130")),
);
pub(crate) static L_HDL: Lab = lab(
    &M_HDL,
    Some(&U_MG_DL),
    54.0,
    13.0,
    20.0,
    110.0,
    0,
    Some(("40", "200")),
);
pub(crate) static L_HBA1C: Lab = lab(
    &M_HBA1C,
    Some(&U_PERCENT),
    5.4,
    0.35,
    4.0,
    15.0,
    1,
    Some(("4", "5.6")),
);
pub(crate) static L_HEMOGLOBIN: Lab = lab(
    &M_HEMOGLOBIN,
    Some(&U_G_DL),
    14.0,
    1.3,
    5.0,
    20.0,
    1,
    Some(("12", "17.5")),
);
pub(crate) static L_HEMATOCRIT: Lab = lab(
    &M_HEMATOCRIT,
    Some(&U_PERCENT),
    42.0,
    4.0,
    18.0,
    60.0,
    1,
    Some(("36", "50")),
);
pub(crate) static L_LEUKOCYTES: Lab = lab(
    &M_LEUKOCYTES,
    Some(&U_THOUSAND_PER_UL),
    7.0,
    1.8,
    2.0,
    30.0,
    1,
    Some(("4.5", "11")),
);
pub(crate) static L_ERYTHROCYTES: Lab = lab(
    &M_ERYTHROCYTES,
    Some(&U_MILLION_PER_UL),
    4.8,
    0.45,
    2.5,
    6.5,
    2,
    Some(("4.2", "5.9")),
);
pub(crate) static L_PLATELETS: Lab = lab(
    &M_PLATELETS,
    Some(&U_THOUSAND_PER_UL),
    260.0,
    55.0,
    50.0,
    700.0,
    0,
    Some(("150", "400")),
);
pub(crate) static L_MCV: Lab = lab(
    &M_MCV,
    Some(&U_FL),
    89.0,
    4.5,
    65.0,
    115.0,
    1,
    Some(("80", "100")),
);
pub(crate) static L_MCH: Lab = lab(
    &M_MCH,
    Some(&U_PG),
    30.0,
    1.8,
    20.0,
    38.0,
    1,
    Some(("27", "33")),
);
pub(crate) static L_MCHC: Lab = lab(
    &M_MCHC,
    Some(&U_G_DL),
    34.0,
    1.0,
    30.0,
    37.0,
    1,
    Some(("32", "36")),
);

pub(crate) static BMP_PANEL: &[&Lab] = &[
    &L_GLUCOSE,
    &L_UREA,
    &L_CREATININE,
    &L_CALCIUM,
    &L_SODIUM,
    &L_POTASSIUM,
    &L_CHLORIDE,
    &L_CO2,
];
pub(crate) static CBC_PANEL: &[&Lab] = &[
    &L_HEMOGLOBIN,
    &L_HEMATOCRIT,
    &L_LEUKOCYTES,
    &L_ERYTHROCYTES,
    &L_PLATELETS,
    &L_MCV,
    &L_MCH,
    &L_MCHC,
];

pub(crate) const NO_MATCHING_CONCEPT: Concept = Concept { standard: false, ..c(0, "No matching concept", "Metadata", "None", "Undefined", "No matching concept") };
pub(crate) const MALE: Concept = c(8507, "MALE", "Gender", "Gender", "Gender", "M");
pub(crate) const FEMALE: Concept = c(8532, "FEMALE", "Gender", "Gender", "Gender", "F");
pub(crate) const WHITE: Concept = c(8527, "White", "Race", "Race", "Race", "5");
pub(crate) const BLACK: Concept = c(8516, "Black or African American", "Race", "Race", "Race", "3");
pub(crate) const ASIAN: Concept = c(8515, "Asian", "Race", "Race", "Race", "2");
pub(crate) const HISPANIC: Concept = c(38003563, "Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "Hispanic");
pub(crate) const NOT_HISPANIC: Concept = c(38003564, "Not Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "Not Hispanic");
pub(crate) const INPATIENT_VISIT: Concept = c(9201, "Inpatient Visit", "Visit", "Visit", "Visit", "IP");
pub(crate) const OUTPATIENT_VISIT: Concept = c(9202, "Outpatient Visit", "Visit", "Visit", "Visit", "OP");
pub(crate) const ER_VISIT: Concept = c(9203, "Emergency Room Visit", "Visit", "Visit", "Visit", "ER");
pub(crate) const TYPE_EHR: Concept = c(32817, "EHR", "Type Concept", "Type Concept", "Type Concept", "OMOP4976890");
pub(crate) const TYPE_VISIT_CLAIM: Concept = c(44818517, "Visit derived from encounter on claim", "Type Concept", "Visit Type", "Visit Type", "OMOP4822465");
pub(crate) const GI_BLEED: Concept = c(192671, "Gastrointestinal hemorrhage", "Condition", "SNOMED", "Clinical Finding", "74474003");
pub(crate) const CELECOXIB_200: Concept = c(1118088, "celecoxib 200 MG Oral Capsule", "Drug", "RxNorm", "Clinical Drug", "205323");
pub(crate) const DICLOFENAC_75: Concept = c(1124304, "diclofenac sodium 75 MG Delayed Release Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "855926");
pub(crate) const ING_CELECOXIB: Concept = c(1118084, "celecoxib", "Drug", "RxNorm", "Ingredient", "140587");
pub(crate) const ING_DICLOFENAC: Concept = c(1124300, "diclofenac", "Drug", "RxNorm", "Ingredient", "3355");
pub(crate) const STRESS: Concept = c(4251306, "Stress", "Condition", "SNOMED", "Clinical Finding", "73595000");
pub(crate) const VIRAL_SINUSITIS: Concept = c(40481087, "Viral sinusitis", "Condition", "SNOMED", "Clinical Finding", "444814009");
pub(crate) const SOCIAL_ISOLATION: Concept = c(4309238, "Social isolation", "Condition", "SNOMED", "Clinical Finding", "422650009");
pub(crate) const LIMITED_SOCIAL_CONTACT: Concept = c(4172829, "Limited social contact", "Condition", "SNOMED", "Clinical Finding", "423315002");
pub(crate) const VIRAL_PHARYNGITIS: Concept = c(4112343, "Acute viral pharyngitis", "Condition", "SNOMED", "Clinical Finding", "195662009");
pub(crate) const ACUTE_BRONCHITIS: Concept = c(260139, "Acute bronchitis", "Condition", "SNOMED", "Clinical Finding", "10509002");
pub(crate) const IPV_VICTIM: Concept = c(45768458, "Victim of intimate partner abuse", "Condition", "SNOMED", "Clinical Finding", "706893006");
pub(crate) const OTITIS_MEDIA: Concept = c(372328, "Otitis media", "Condition", "SNOMED", "Clinical Finding", "65363002");
pub(crate) const NORMAL_PREGNANCY: Concept = c(4217975, "Normal pregnancy", "Condition", "SNOMED", "Clinical Finding", "72892002");
pub(crate) const RISK_ACTIVITY: Concept = c(4059650, "Risk activity involvement", "Condition", "SNOMED", "Clinical Finding", "160968000");
pub(crate) const ANEMIA: Concept = c(439777, "Anemia", "Condition", "SNOMED", "Clinical Finding", "271737000");
pub(crate) const STREP_THROAT: Concept = c(28060, "Streptococcal sore throat", "Condition", "SNOMED", "Clinical Finding", "43878008");
pub(crate) const CHRONIC_LOW_BACK_PAIN: Concept = c(4132891, "Chronic low back pain", "Condition", "SNOMED", "Clinical Finding", "278860009");
pub(crate) const MISCARRIAGE: Concept = c(4078393, "Miscarriage in first trimester", "Condition", "SNOMED", "Clinical Finding", "19169002");
pub(crate) const HYPERTENSION: Concept = c(320128, "Essential hypertension", "Condition", "SNOMED", "Clinical Finding", "59621000");
pub(crate) const SEVERE_ANXIETY: Concept = c(4214746, "Severe anxiety (panic)", "Condition", "SNOMED", "Clinical Finding", "80583007");
pub(crate) const CHRONIC_SINUSITIS: Concept = c(257012, "Chronic sinusitis", "Condition", "SNOMED", "Clinical Finding", "40055000");
pub(crate) const CHRONIC_NECK_PAIN: Concept = c(43530622, "Chronic neck pain", "Condition", "SNOMED", "Clinical Finding", "1121000119107");
pub(crate) const ANKLE_SPRAIN: Concept = c(81151, "Sprain of ankle", "Condition", "SNOMED", "Clinical Finding", "44465007");
pub(crate) const OA_KNEE: Concept = c(4079750, "Osteoarthritis of knee", "Condition", "SNOMED", "Clinical Finding", "239873007");
pub(crate) const CONCUSSION: Concept = c(378001, "Concussion with no loss of consciousness", "Condition", "SNOMED", "Clinical Finding", "62106007");
pub(crate) const BACTERIAL_SINUSITIS: Concept = c(4294548, "Acute bacterial sinusitis", "Condition", "SNOMED", "Clinical Finding", "75498004");
pub(crate) const COUGH: Concept = c(254761, "Cough", "Condition", "SNOMED", "Clinical Finding", "49727002");
pub(crate) const COVID19: Concept = c(37311061, "COVID-19", "Condition", "SNOMED", "Clinical Finding", "840539006");
pub(crate) const SINUSITIS: Concept = c(4283893, "Sinusitis", "Condition", "SNOMED", "Clinical Finding", "36971009");
pub(crate) const ALLERGIC_RHINITIS: Concept = c(4048171, "Perennial allergic rhinitis with seasonal variation", "Condition", "SNOMED", "Clinical Finding", "232353008");
pub(crate) const HYPERLIPIDEMIA: Concept = c(432867, "Hyperlipidemia", "Condition", "SNOMED", "Clinical Finding", "55822004");
pub(crate) const ATOPIC_DERMATITIS: Concept = c(133834, "Atopic dermatitis", "Condition", "SNOMED", "Clinical Finding", "24079001");
pub(crate) const CORONARY_ARTERIOSCLEROSIS: Concept = c(317576, "Coronary arteriosclerosis", "Condition", "SNOMED", "Clinical Finding", "53741008");
pub(crate) const HYPERTRIGLYCERIDEMIA: Concept = c(4120314, "Hypertriglyceridemia", "Condition", "SNOMED", "Clinical Finding", "302870006");
pub(crate) const RIB_FRACTURE: Concept = c(4142905, "Fracture of rib", "Condition", "SNOMED", "Clinical Finding", "33737001");
pub(crate) const CLAVICLE_FRACTURE: Concept = c(4237458, "Fracture of clavicle", "Condition", "SNOMED", "Clinical Finding", "58150001");
pub(crate) const FOREARM_FRACTURE: Concept = c(4278672, "Fracture of forearm", "Condition", "SNOMED", "Clinical Finding", "65966004");
pub(crate) const FATIGUE: Concept = c(4223659, "Fatigue", "Condition", "SNOMED", "Clinical Finding", "84229001");
pub(crate) const FEVER: Concept = c(437663, "Fever", "Condition", "SNOMED", "Clinical Finding", "386661006");
pub(crate) const EPIDERMAL_BURN: Concept = c(4296204, "Epidermal burn of skin", "Condition", "SNOMED", "Clinical Finding", "403190006");
pub(crate) const ADHD: Concept = c(440086, "Child attention deficit disorder", "Condition", "SNOMED", "Clinical Finding", "192127007");
pub(crate) const HIP_FRACTURE: Concept = c(4230399, "Closed fracture of hip", "Condition", "SNOMED", "Clinical Finding", "359817006");
pub(crate) const ALZHEIMERS: Concept = c(378419, "Alzheimer's disease", "Condition", "SNOMED", "Clinical Finding", "26929004");
pub(crate) const OSTEOPOROSIS: Concept = c(80502, "Osteoporosis", "Condition", "SNOMED", "Clinical Finding", "64859006");
pub(crate) const CYSTITIS: Concept = c(195588, "Cystitis", "Condition", "SNOMED", "Clinical Finding", "38822007");
pub(crate) const FOOT_LACERATION: Concept = c(4109685, "Laceration of foot", "Condition", "SNOMED", "Clinical Finding", "284551006");
pub(crate) const THIGH_LACERATION: Concept = c(4152936, "Laceration of thigh", "Condition", "SNOMED", "Clinical Finding", "283385000");
pub(crate) const HAND_LACERATION: Concept = c(4113008, "Laceration of hand", "Condition", "SNOMED", "Clinical Finding", "284549007");
pub(crate) const DIABETIC_RETINOPATHY: Concept = c(4226121, "Retinopathy due to type 2 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "422034002");
pub(crate) const DIABETIC_KIDNEY: Concept = c(192279, "Disorder of kidney due to diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "127013003");
pub(crate) const CKD1: Concept = c(443614, "Chronic kidney disease stage 1", "Condition", "SNOMED", "Clinical Finding", "431855005");
pub(crate) const T2DM: Concept = c(201826, "Type 2 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "44054006");
pub(crate) const METABOLIC_SYNDROME: Concept = c(436940, "Metabolic syndrome X", "Condition", "SNOMED", "Clinical Finding", "237602007");
pub(crate) const CHF: Concept = c(4229440, "Chronic congestive heart failure", "Condition", "SNOMED", "Clinical Finding", "88805009");
pub(crate) const GOUT: Concept = c(440674, "Gout", "Condition", "SNOMED", "Clinical Finding", "90560007");
pub(crate) const DRUG_OVERDOSE: Concept = c(4208104, "Drug overdose", "Condition", "SNOMED", "Clinical Finding", "55680006");
pub(crate) const LOSS_OF_TASTE: Concept = c(4289517, "Loss of taste", "Condition", "SNOMED", "Clinical Finding", "36955009");
pub(crate) const HCTZ_25: Concept = c(19078106, "hydrochlorothiazide 25 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "310798");
pub(crate) const LISINOPRIL_10: Concept = c(19080128, "lisinopril 10 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "314076");
pub(crate) const LISINOPRIL_20: Concept = c(19080129, "lisinopril 20 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "314077");
pub(crate) const AMLODIPINE_2_5: Concept = c(19073094, "amlodipine 2.5 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "308136");
pub(crate) const AMLODIPINE_5: Concept = c(1332419, "amlodipine 5 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "197361");
pub(crate) const LOSARTAN_25: Concept = c(40185280, "losartan potassium 25 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "979485");
pub(crate) const LOSARTAN_50: Concept = c(40185304, "losartan potassium 50 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "979492");
pub(crate) const SIMVASTATIN_10: Concept = c(1539463, "simvastatin 10 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "314231");
pub(crate) const SIMVASTATIN_20: Concept = c(1539411, "simvastatin 20 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "312961");
pub(crate) const HUMULIN: Concept = c(19009384, "insulin isophane, human 70 UNT/ML / insulin, regular, human 30 UNT/ML Injectable Suspension [Humulin]", "Drug", "RxNorm", "Branded Drug", "106892");
pub(crate) const CLOPIDOGREL_75: Concept = c(19075601, "clopidogrel 75 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "309362");
pub(crate) const NITROGLYCERIN_SPRAY: Concept = c(19126352, "nitroglycerin 0.4 MG/ACTUAT Mucosal Spray", "Drug", "RxNorm", "Clinical Drug", "705129");
pub(crate) const FUROSEMIDE_40: Concept = c(957136, "furosemide 40 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "313988");
pub(crate) const CARVEDILOL_25: Concept = c(19022781, "carvedilol 25 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "200033");
pub(crate) const ALBUTEROL_INHALER: Concept = c(1511248, "NDA020503 200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "Drug", "RxNorm", "Clinical Drug", "2123111");
pub(crate) const FLUTICASONE_INHALER: Concept = c(40169216, "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "Drug", "RxNorm", "Quant Clinical Drug", "895994");
pub(crate) const LORATADINE_5: Concept = c(19125062, "loratadine 5 MG Chewable Tablet", "Drug", "RxNorm", "Clinical Drug", "665078");
pub(crate) const EPINEPHRINE_AUTOINJ: Concept = c(1594382, "NDA020800 0.3 ML epinephrine 1 MG/ML Auto-Injector", "Drug", "RxNorm", "Clinical Drug", "1870230");
pub(crate) const ACETAMINOPHEN_325: Concept = c(1127433, "acetaminophen 325 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "313782");
pub(crate) const ACETAMINOPHEN_160_CHEW: Concept = c(19079924, "acetaminophen 160 MG Chewable Tablet", "Drug", "RxNorm", "Clinical Drug", "313820");
pub(crate) const APAP_DXM_DOXYLAMINE: Concept = c(40229134, "acetaminophen 21.7 MG/ML / dextromethorphan hydrobromide 1 MG/ML / doxylamine succinate 0.417 MG/ML Oral Solution", "Drug", "RxNorm", "Clinical Drug", "1043400");
pub(crate) const IBUPROFEN_200: Concept = c(19078461, "ibuprofen 200 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "310965");
pub(crate) const IBUPROFEN_100: Concept = c(19019979, "ibuprofen 100 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "198405");
pub(crate) const NAPROXEN_220: Concept = c(1115171, "naproxen sodium 220 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "849574");
pub(crate) const TRAMADOL_50: Concept = c(19134047, "tramadol hydrochloride 50 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "835603");
pub(crate) const APAP_HYDROCODONE: Concept = c(40162606, "acetaminophen 300 MG / hydrocodone bitartrate 5 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "856987");
pub(crate) const PERCOCET: Concept = c(40231918, "acetaminophen 325 MG / oxycodone hydrochloride 10 MG Oral Tablet [Percocet]", "Drug", "RxNorm", "Branded Drug", "1049625");
pub(crate) const PENICILLIN_V_500: Concept = c(19133905, "penicillin V potassium 500 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "834102");
pub(crate) const PENICILLIN_V_250: Concept = c(19133873, "penicillin V potassium 250 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "834061");
pub(crate) const AMOXICILLIN_500: Concept = c(19073188, "amoxicillin 500 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "308192");
pub(crate) const AMOXICILLIN_250: Concept = c(19073183, "amoxicillin 250 MG Oral Capsule", "Drug", "RxNorm", "Clinical Drug", "308182");
pub(crate) const AMOX_CLAV: Concept = c(1713671, "amoxicillin 250 MG / clavulanate 125 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "562251");
pub(crate) const CEFUROXIME_250: Concept = c(19075001, "cefuroxime 250 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "309097");
pub(crate) const CEFACLOR_250: Concept = c(19074843, "cefaclor 250 MG Oral Capsule", "Drug", "RxNorm", "Clinical Drug", "309045");
pub(crate) const CEFDINIR_300: Concept = c(19023564, "cefdinir 300 MG Oral Capsule", "Drug", "RxNorm", "Clinical Drug", "200346");
pub(crate) const NITROFURANTOIN: Concept = c(920300, "nitrofurantoin 5 MG/ML Oral Suspension", "Drug", "RxNorm", "Clinical Drug", "311989");
pub(crate) const PHENAZOPYRIDINE: Concept = c(40236824, "phenazopyridine hydrochloride 100 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "1094107");
pub(crate) const NORETHINDRONE_PACK: Concept = c(19133679, "{28 (norethindrone 0.35 MG Oral Tablet) } Pack [Errin 28 Day]", "Drug", "RxNorm", "Branded Pack", "831533");
pub(crate) const MEDROXYPROGESTERONE: Concept = c(40224805, "1 ML medroxyprogesterone acetate 150 MG/ML Injection", "Drug", "RxNorm", "Quant Clinical Drug", "1000126");
pub(crate) const ETONOGESTREL_IMPLANT: Concept = c(1519937, "etonogestrel 68 MG Drug Implant", "Drug", "RxNorm", "Clinical Drug", "389221");
pub(crate) const GALANTAMINE_4: Concept = c(19077572, "galantamine 4 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "310436");
pub(crate) const MEMANTINE: Concept = c(40222846, "memantine hydrochloride 2 MG/ML Oral Solution", "Drug", "RxNorm", "Clinical Drug", "996740");
pub(crate) const ALENDRONATE_10: Concept = c(40173590, "alendronic acid 10 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "904419");
pub(crate) const HYDROCORTISONE_CREAM: Concept = c(19008572, "hydrocortisone 10 MG/ML Topical Cream", "Drug", "RxNorm", "Clinical Drug", "106258");
pub(crate) const NICOTINE_PATCH: Concept = c(19019308, "24 HR nicotine 0.292 MG/HR Transdermal System", "Drug", "RxNorm", "Quant Clinical Drug", "198031");
pub(crate) const FENTANYL_PATCH: Concept = c(1154062, "72 HR fentanyl 0.025 MG/HR Transdermal System", "Drug", "RxNorm", "Quant Clinical Drug", "245134");
pub(crate) const ING_LISINOPRIL: Concept = c(1308216, "lisinopril", "Drug", "RxNorm", "Ingredient", "29046");
pub(crate) const ING_IBUPROFEN: Concept = c(1177480, "ibuprofen", "Drug", "RxNorm", "Ingredient", "5640");
pub(crate) const ING_PENICILLIN_V: Concept = c(1729720, "penicillin V", "Drug", "RxNorm", "Ingredient", "7984");
pub(crate) const ING_CEFUROXIME: Concept = c(1778162, "cefuroxime", "Drug", "RxNorm", "Ingredient", "2194");
pub(crate) const ING_CEFACLOR: Concept = c(1768849, "cefaclor", "Drug", "RxNorm", "Ingredient", "2176");
pub(crate) const ING_CEFDINIR: Concept = c(1796458, "cefdinir", "Drug", "RxNorm", "Ingredient", "25037");
pub(crate) const PR_SOCIAL_NEEDS: Concept = c(46272459, "Assessment of health and social care needs", "Procedure", "SNOMED", "Procedure", "710824005");
pub(crate) const PR_SUBSTANCE_USE: Concept = c(762506, "Assessment of substance use", "Procedure", "SNOMED", "Procedure", "428211000124100");
pub(crate) const PR_MED_RECONCILIATION: Concept = c(4326177, "Medication Reconciliation", "Procedure", "SNOMED", "Procedure", "430193006");
pub(crate) const PR_SC_IMMUNOTHERAPY: Concept = c(4107731, "Subcutaneous immunotherapy", "Procedure", "SNOMED", "Procedure", "180256009");
pub(crate) const PR_ANXIETY_ASSESSMENT: Concept = c(46272472, "Assessment of anxiety", "Procedure", "SNOMED", "Procedure", "710841007");
pub(crate) const PR_IM_INJECTION: Concept = c(4295880, "Intramuscular injection", "Procedure", "SNOMED", "Procedure", "76601001");
pub(crate) const PR_AUDIT_C: Concept = c(35621997, "Assessment using AUDIT-C (Alcohol Use Disorders Identification Test - Consumption)", "Procedure", "SNOMED", "Procedure", "763302001");
pub(crate) const PR_FUNDAL_HEIGHT: Concept = c(4168236, "Evaluation of uterine fundal height", "Procedure", "SNOMED", "Procedure", "274804006");
pub(crate) const PR_FETAL_HEART: Concept = c(4075363, "Auscultation of the fetal heart", "Procedure", "SNOMED", "Procedure", "225158009");
pub(crate) const PR_MORSE_FALL: Concept = c(35621755, "Assessment using Morse Fall Scale", "Procedure", "SNOMED", "Procedure", "762993000");
pub(crate) const PR_CRAFFT: Concept = c(3655745, "Assessment using Car, Relax, Alone, Forget, Friends, Trouble Screening Test", "Procedure", "SNOMED", "Procedure", "868187001");
pub(crate) const PR_ANTICIPATORY_GUIDANCE: Concept = c(4298386, "Anticipatory guidance", "Procedure", "SNOMED", "Procedure", "386516004");
pub(crate) const PR_PHYSICAL_EXAM: Concept = c(4240345, "Physical examination", "Procedure", "SNOMED", "Procedure", "5880005");
pub(crate) const PR_FETAL_ULTRASOUND: Concept = c(4060626, "Ultrasound scan for fetal viability", "Procedure", "SNOMED", "Procedure", "169230002");
pub(crate) const PR_OXYGEN_MASK: Concept = c(4162736, "Oxygen administration by mask", "Procedure", "SNOMED", "Procedure", "371908008");
pub(crate) const PR_PRONE: Concept = c(4196006, "Placing subject in prone position", "Procedure", "SNOMED", "Procedure", "431182000");
pub(crate) const PR_COLONOSCOPY: Concept = c(4249893, "Colonoscopy", "Procedure", "SNOMED", "Procedure", "73761001");
pub(crate) const PR_ECHO: Concept = c(4230911, "Echocardiography", "Procedure", "SNOMED", "Procedure", "40701008");
pub(crate) const PR_CBT: Concept = c(4043071, "Cognitive and behavioral therapy", "Procedure", "SNOMED", "Procedure", "228557008");
pub(crate) const PR_CHEST_XRAY: Concept = c(4163872, "Plain chest X-ray", "Procedure", "SNOMED", "Procedure", "399208008");
pub(crate) const PR_HEALTH_EDUCATION: Concept = c(4158254, "Health risks education", "Procedure", "SNOMED", "Procedure", "370995009");
pub(crate) const PR_BONE_IMMOBILIZATION: Concept = c(4170947, "Bone immobilization", "Procedure", "SNOMED", "Procedure", "274474001");
pub(crate) const PR_CONTRACEPTIVE_INSERT: Concept = c(4059978, "Insertion of subcutaneous contraceptive", "Procedure", "SNOMED", "Procedure", "169553002");
pub(crate) const PR_DTP_VACCINE: Concept = c(4163708, "Administration of diphtheria, pertussis, and tetanus vaccine", "Procedure", "SNOMED", "Procedure", "399014008");
pub(crate) const PR_PAP_SMEAR: Concept = c(4234541, "Cytopathology procedure, preparation of smear, genital source", "Procedure", "SNOMED", "Procedure", "90226004");
pub(crate) const PR_ALLERGY_SCREEN: Concept = c(4191853, "Allergy screening test", "Procedure", "SNOMED", "Procedure", "395142003");
pub(crate) const PR_SUTURE: Concept = c(4125906, "Suture open wound", "Procedure", "SNOMED", "Procedure", "288086009");
pub(crate) const PR_ECG: Concept = c(4163951, "Electrocardiographic procedure", "Procedure", "SNOMED", "Procedure", "29303009");
pub(crate) const PR_BRIEF_EXAM: Concept = c(4037675, "Brief general examination", "Procedure", "SNOMED", "Procedure", "162676008");
pub(crate) const PR_REVIEW_OF_SYSTEMS: Concept = c(4187458, "Review of systems", "Procedure", "SNOMED", "Procedure", "415300000");
pub(crate) const PR_BONE_DENSITY: Concept = c(4195803, "Bone density scan", "Procedure", "SNOMED", "Procedure", "312681000");
pub(crate) const PR_HF_EDUCATION: Concept = c(4309550, "Heart failure education", "Procedure", "SNOMED", "Procedure", "423475008");
pub(crate) const PR_TRANSFUSION: Concept = c(4108705, "Intravenous blood transfusion of packed cells", "Procedure", "SNOMED", "Procedure", "180207008");
pub(crate) const PR_SPUTUM: Concept = c(4151422, "Sputum examination", "Procedure", "SNOMED", "Procedure", "269911007");
pub(crate) const M_SBP: Concept = c(3004249, "Systolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "8480-6");
pub(crate) const M_DBP: Concept = c(3012888, "Diastolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "8462-4");
pub(crate) const M_WEIGHT: Concept = c(3025315, "Body weight", "Measurement", "LOINC", "Clinical Observation", "29463-7");
pub(crate) const M_HEIGHT: Concept = c(3036277, "Body height", "Measurement", "LOINC", "Clinical Observation", "8302-2");
pub(crate) const M_PAIN: Concept = c(43055141, "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "Measurement", "LOINC", "Clinical Observation", "72514-3");
pub(crate) const M_RESP_RATE: Concept = c(3024171, "Respiratory rate", "Measurement", "LOINC", "Clinical Observation", "9279-1");
pub(crate) const M_HEART_RATE: Concept = c(3027018, "Heart rate", "Measurement", "LOINC", "Clinical Observation", "8867-4");
pub(crate) const M_BMI: Concept = c(3038553, "Body mass index (BMI) [Ratio]", "Measurement", "LOINC", "Clinical Observation", "39156-5");
pub(crate) const M_POTASSIUM: Concept = c(3005456, "Potassium [Moles/volume] in Blood", "Measurement", "LOINC", "Lab Test", "6298-4");
pub(crate) const M_CO2: Concept = c(3014094, "Carbon dioxide, total [Moles/volume] in Blood", "Measurement", "LOINC", "Lab Test", "20565-8");
pub(crate) const M_CHLORIDE: Concept = c(3018572, "Chloride [Moles/volume] in Blood", "Measurement", "LOINC", "Lab Test", "2069-3");
pub(crate) const M_SODIUM: Concept = c(3000285, "Sodium [Moles/volume] in Blood", "Measurement", "LOINC", "Lab Test", "2947-0");
pub(crate) const M_CALCIUM: Concept = c(3032503, "Calcium [Mass/volume] in Blood", "Measurement", "LOINC", "Lab Test", "49765-1");
pub(crate) const M_CREATININE: Concept = c(3051825, "Creatinine [Mass/volume] in Blood", "Measurement", "LOINC", "Lab Test", "38483-4");
pub(crate) const M_UREA: Concept = c(3004295, "Urea nitrogen [Mass/volume] in Blood", "Measurement", "LOINC", "Lab Test", "6299-2");
pub(crate) const M_GLUCOSE: Concept = c(3000483, "Glucose [Mass/volume] in Blood", "Measurement", "LOINC", "Lab Test", "2339-0");
pub(crate) const M_HBA1C: Concept = c(3004410, "Hemoglobin A1c/Hemoglobin.total in Blood", "Measurement", "LOINC", "Lab Test", "4548-4");
pub(crate) const M_CHOLESTEROL: Concept = c(3027114, "Cholesterol [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "2093-3");
pub(crate) const M_TRIGLYCERIDE: Concept = c(3022192, "Triglyceride [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "2571-8");
pub(crate) const M_LDL: Concept = c(3009966, "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "Measurement", "LOINC", "Lab Test", "18262-6");
pub(crate) const M_HDL: Concept = c(3007070, "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "2085-9");
pub(crate) const M_HEMOGLOBIN: Concept = c(3000963, "Hemoglobin [Mass/volume] in Blood", "Measurement", "LOINC", "Lab Test", "718-7");
pub(crate) const M_PLATELETS: Concept = c(3024929, "Platelets [#/volume] in Blood by Automated count", "Measurement", "LOINC", "Lab Test", "777-3");
pub(crate) const M_MCHC: Concept = c(3009744, "MCHC [Mass/volume] by Automated count", "Measurement", "LOINC", "Lab Test", "786-4");
pub(crate) const M_MCH: Concept = c(3012030, "MCH [Entitic mass] by Automated count", "Measurement", "LOINC", "Lab Test", "785-6");
pub(crate) const M_MCV: Concept = c(3023599, "MCV [Entitic volume] by Automated count", "Measurement", "LOINC", "Lab Test", "787-2");
pub(crate) const M_ERYTHROCYTES: Concept = c(3020416, "Erythrocytes [#/volume] in Blood by Automated count", "Measurement", "LOINC", "Lab Test", "789-8");
pub(crate) const M_LEUKOCYTES: Concept = c(3000905, "Leukocytes [#/volume] in Blood by Automated count", "Measurement", "LOINC", "Lab Test", "6690-2");
pub(crate) const M_HEMATOCRIT: Concept = c(3023314, "Hematocrit [Volume Fraction] of Blood by Automated count", "Measurement", "LOINC", "Lab Test", "4544-3");
pub(crate) const M_BODY_TEMP: Concept = c(3020891, "Body temperature", "Measurement", "LOINC", "Clinical Observation", "8310-5");
pub(crate) const M_THROAT_CULTURE: Concept = c(4024958, "Throat culture", "Measurement", "SNOMED", "Procedure", "117015009");
pub(crate) const M_DEPRESSION_SCREEN: Concept = c(4064377, "Depression screening", "Measurement", "SNOMED", "Procedure", "171207006");
pub(crate) const M_OXYGEN_SAT: Concept = c(3016502, "Oxygen saturation in Arterial blood", "Measurement", "LOINC", "Lab Test", "2708-6");
pub(crate) const U_MMHG: Concept = c(8876, "millimeter mercury column", "Unit", "UCUM", "Unit", "mm[Hg]");
pub(crate) const U_KG: Concept = c(9529, "kilogram", "Unit", "UCUM", "Unit", "kg");
pub(crate) const U_CM: Concept = c(8582, "centimeter", "Unit", "UCUM", "Unit", "cm");
pub(crate) const U_KG_M2: Concept = c(9531, "kilogram per square meter", "Unit", "UCUM", "Unit", "kg/m2");
pub(crate) const U_PER_MIN: Concept = c(8541, "per minute", "Unit", "UCUM", "Unit", "/min");
pub(crate) const U_PERCENT: Concept = c(8554, "percent", "Unit", "UCUM", "Unit", "%");
pub(crate) const U_MG_DL: Concept = c(8840, "milligram per deciliter", "Unit", "UCUM", "Unit", "mg/dL");
pub(crate) const U_MMOL_L: Concept = c(8753, "millimole per liter", "Unit", "UCUM", "Unit", "mmol/L");
pub(crate) const U_G_DL: Concept = c(8713, "gram per deciliter", "Unit", "UCUM", "Unit", "g/dL");
pub(crate) const U_THOUSAND_PER_UL: Concept = c(8848, "thousand per microliter", "Unit", "UCUM", "Unit", "10*3/uL");
pub(crate) const U_MILLION_PER_UL: Concept = c(8815, "million per microliter", "Unit", "UCUM", "Unit", "10*6/uL");
pub(crate) const U_FL: Concept = c(8583, "femtoliter", "Unit", "UCUM", "Unit", "fL");
pub(crate) const U_PG: Concept = c(8564, "picogram", "Unit", "UCUM", "Unit", "pg");
pub(crate) const U_CELSIUS: Concept = c(586323, "degree Celsius", "Unit", "UCUM", "Unit", "Cel");
pub(crate) const O_SMOKING: Concept = c(43054909, "Tobacco smoking status", "Observation", "LOINC", "Clinical Observation", "72166-2");
pub(crate) const O_HOUSING: Concept = c(42869557, "Housing status", "Observation", "LOINC", "Survey", "71802-3");
pub(crate) const O_EMPLOYMENT: Concept = c(40770471, "Employment status - current", "Observation", "LOINC", "Clinical Observation", "67875-5");
pub(crate) const O_PHQ2: Concept = c(40758879, "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]", "Observation", "LOINC", "Survey", "55758-7");
pub(crate) const O_GAD7: Concept = c(42868746, "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]", "Observation", "LOINC", "Survey", "70274-6");
pub(crate) const O_AUDIT_C: Concept = c(46235357, "Total score [AUDIT-C]", "Observation", "LOINC", "Survey", "75626-2");
pub(crate) const O_DAST10: Concept = c(42529243, "Total score [DAST-10]", "Observation", "LOINC", "Survey", "82667-7");
pub(crate) const O_PAIN: Concept = c(3034263, "Pain severity - Reported", "Observation", "LOINC", "Clinical Observation", "38208-5");
pub(crate) const O_FALL_RISK_TOTAL: Concept = c(40762523, "Fall risk total [Morse Fall Scale]", "Observation", "LOINC", "Survey", "59460-6");
pub(crate) const O_EDUCATION: Concept = c(42528763, "Highest level of education", "Observation", "LOINC", "Clinical Observation", "82589-3");
pub(crate) const O_INSURANCE: Concept = c(46235654, "Primary insurance", "Observation", "LOINC", "Clinical Observation", "76437-3");
pub(crate) const O_LANGUAGE: Concept = c(40758030, "Preferred language", "Observation", "LOINC", "Clinical Observation", "54899-0");
pub(crate) const O_STRESS_LEVEL: Concept = c(37020116, "Stress level", "Observation", "LOINC", "Clinical Observation", "93038-8");
pub(crate) const O_FULL_TIME: Concept = c(4053118, "Full-time employment", "Observation", "SNOMED", "Clinical Finding", "160903007");
pub(crate) const O_PART_TIME: Concept = c(4059634, "Part-time employment", "Observation", "SNOMED", "Clinical Finding", "160904001");
pub(crate) const O_NOT_IN_LABOR_FORCE: Concept = c(42538208, "Not in labor force", "Observation", "SNOMED", "Clinical Finding", "741062008");
pub(crate) const O_PHQ9: Concept = c(3042932, "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]", "Observation", "LOINC", "Survey", "44261-6");

/// Every concept the generator can emit, for `concept.csv`.
pub(crate) const ALL_CONCEPTS: &[&Concept] = &[
    &NO_MATCHING_CONCEPT,
    &MALE,
    &FEMALE,
    &WHITE,
    &BLACK,
    &ASIAN,
    &HISPANIC,
    &NOT_HISPANIC,
    &INPATIENT_VISIT,
    &OUTPATIENT_VISIT,
    &ER_VISIT,
    &TYPE_EHR,
    &TYPE_VISIT_CLAIM,
    &GI_BLEED,
    &CELECOXIB_200,
    &DICLOFENAC_75,
    &ING_CELECOXIB,
    &ING_DICLOFENAC,
    &STRESS,
    &VIRAL_SINUSITIS,
    &SOCIAL_ISOLATION,
    &LIMITED_SOCIAL_CONTACT,
    &VIRAL_PHARYNGITIS,
    &ACUTE_BRONCHITIS,
    &IPV_VICTIM,
    &OTITIS_MEDIA,
    &NORMAL_PREGNANCY,
    &RISK_ACTIVITY,
    &ANEMIA,
    &STREP_THROAT,
    &CHRONIC_LOW_BACK_PAIN,
    &MISCARRIAGE,
    &HYPERTENSION,
    &SEVERE_ANXIETY,
    &CHRONIC_SINUSITIS,
    &CHRONIC_NECK_PAIN,
    &ANKLE_SPRAIN,
    &OA_KNEE,
    &CONCUSSION,
    &BACTERIAL_SINUSITIS,
    &COUGH,
    &COVID19,
    &SINUSITIS,
    &ALLERGIC_RHINITIS,
    &HYPERLIPIDEMIA,
    &ATOPIC_DERMATITIS,
    &CORONARY_ARTERIOSCLEROSIS,
    &HYPERTRIGLYCERIDEMIA,
    &RIB_FRACTURE,
    &CLAVICLE_FRACTURE,
    &FOREARM_FRACTURE,
    &FATIGUE,
    &FEVER,
    &EPIDERMAL_BURN,
    &ADHD,
    &HIP_FRACTURE,
    &ALZHEIMERS,
    &OSTEOPOROSIS,
    &CYSTITIS,
    &FOOT_LACERATION,
    &THIGH_LACERATION,
    &HAND_LACERATION,
    &DIABETIC_RETINOPATHY,
    &DIABETIC_KIDNEY,
    &CKD1,
    &T2DM,
    &METABOLIC_SYNDROME,
    &CHF,
    &GOUT,
    &DRUG_OVERDOSE,
    &LOSS_OF_TASTE,
    &HCTZ_25,
    &LISINOPRIL_10,
    &LISINOPRIL_20,
    &AMLODIPINE_2_5,
    &AMLODIPINE_5,
    &LOSARTAN_25,
    &LOSARTAN_50,
    &SIMVASTATIN_10,
    &SIMVASTATIN_20,
    &HUMULIN,
    &CLOPIDOGREL_75,
    &NITROGLYCERIN_SPRAY,
    &FUROSEMIDE_40,
    &CARVEDILOL_25,
    &ALBUTEROL_INHALER,
    &FLUTICASONE_INHALER,
    &LORATADINE_5,
    &EPINEPHRINE_AUTOINJ,
    &ACETAMINOPHEN_325,
    &ACETAMINOPHEN_160_CHEW,
    &APAP_DXM_DOXYLAMINE,
    &IBUPROFEN_200,
    &IBUPROFEN_100,
    &NAPROXEN_220,
    &TRAMADOL_50,
    &APAP_HYDROCODONE,
    &PERCOCET,
    &PENICILLIN_V_500,
    &PENICILLIN_V_250,
    &AMOXICILLIN_500,
    &AMOXICILLIN_250,
    &AMOX_CLAV,
    &CEFUROXIME_250,
    &CEFACLOR_250,
    &CEFDINIR_300,
    &NITROFURANTOIN,
    &PHENAZOPYRIDINE,
    &NORETHINDRONE_PACK,
    &MEDROXYPROGESTERONE,
    &ETONOGESTREL_IMPLANT,
    &GALANTAMINE_4,
    &MEMANTINE,
    &ALENDRONATE_10,
    &HYDROCORTISONE_CREAM,
    &NICOTINE_PATCH,
    &FENTANYL_PATCH,
    &ING_LISINOPRIL,
    &ING_IBUPROFEN,
    &ING_PENICILLIN_V,
    &ING_CEFUROXIME,
    &ING_CEFACLOR,
    &ING_CEFDINIR,
    &PR_SOCIAL_NEEDS,
    &PR_SUBSTANCE_USE,
    &PR_MED_RECONCILIATION,
    &PR_SC_IMMUNOTHERAPY,
    &PR_ANXIETY_ASSESSMENT,
    &PR_IM_INJECTION,
    &PR_AUDIT_C,
    &PR_FUNDAL_HEIGHT,
    &PR_FETAL_HEART,
    &PR_MORSE_FALL,
    &PR_CRAFFT,
    &PR_ANTICIPATORY_GUIDANCE,
    &PR_PHYSICAL_EXAM,
    &PR_FETAL_ULTRASOUND,
    &PR_OXYGEN_MASK,
    &PR_PRONE,
    &PR_COLONOSCOPY,
    &PR_ECHO,
    &PR_CBT,
    &PR_CHEST_XRAY,
    &PR_HEALTH_EDUCATION,
    &PR_BONE_IMMOBILIZATION,
    &PR_CONTRACEPTIVE_INSERT,
    &PR_DTP_VACCINE,
    &PR_PAP_SMEAR,
    &PR_ALLERGY_SCREEN,
    &PR_SUTURE,
    &PR_ECG,
    &PR_BRIEF_EXAM,
    &PR_REVIEW_OF_SYSTEMS,
    &PR_BONE_DENSITY,
    &PR_HF_EDUCATION,
    &PR_TRANSFUSION,
    &PR_SPUTUM,
    &M_SBP,
    &M_DBP,
    &M_WEIGHT,
    &M_HEIGHT,
    &M_PAIN,
    &M_RESP_RATE,
    &M_HEART_RATE,
    &M_BMI,
    &M_POTASSIUM,
    &M_CO2,
    &M_CHLORIDE,
    &M_SODIUM,
    &M_CALCIUM,
    &M_CREATININE,
    &M_UREA,
    &M_GLUCOSE,
    &M_HBA1C,
    &M_CHOLESTEROL,
    &M_TRIGLYCERIDE,
    &M_LDL,
    &M_HDL,
    &M_HEMOGLOBIN,
    &M_PLATELETS,
    &M_MCHC,
    &M_MCH,
    &M_MCV,
    &M_ERYTHROCYTES,
    &M_LEUKOCYTES,
    &M_HEMATOCRIT,
    &M_BODY_TEMP,
    &M_THROAT_CULTURE,
    &M_DEPRESSION_SCREEN,
    &M_OXYGEN_SAT,
    &U_MMHG,
    &U_KG,
    &U_CM,
    &U_KG_M2,
    &U_PER_MIN,
    &U_PERCENT,
    &U_MG_DL,
    &U_MMOL_L,
    &U_G_DL,
    &U_THOUSAND_PER_UL,
    &U_MILLION_PER_UL,
    &U_FL,
    &U_PG,
    &U_CELSIUS,
    &O_SMOKING,
    &O_HOUSING,
    &O_EMPLOYMENT,
    &O_PHQ2,
    &O_GAD7,
    &O_AUDIT_C,
    &O_DAST10,
    &O_PAIN,
    &O_FALL_RISK_TOTAL,
    &O_EDUCATION,
    &O_INSURANCE,
    &O_LANGUAGE,
    &O_STRESS_LEVEL,
    &O_FULL_TIME,
    &O_PART_TIME,
    &O_NOT_IN_LABOR_FORCE,
    &O_PHQ9,
];
