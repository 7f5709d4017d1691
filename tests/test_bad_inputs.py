"""The catalogue of bad inputs: every one ends with one line naming what is wrong, a non-zero
exit, no traceback and nothing left where output would have gone.

Each row is a real command, run as `python -m` runs it, in its own process (forked by
tests/command_server.py after the libraries every command loads first); the rows run
concurrently. Validation comes before TensorFlow loads, so each row takes a fraction of a
second.
(Method hyper-parameters, checked by building the method, are in tests/test_run.py.)
Placeholders: DATA (a good tiny table), BAD (the row's own bad table, built by its `edit`),
OUT (where output would go; it must not exist afterwards), FILE (an existing file that must not
change), MODEL (an export directory with a damaged model).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kmtl.data import featurize
from tests import helpers

RUN, STUDY, PREDICT = ("kmtl.run",), ("kmtl.study",), ("kmtl.predict",)
BENCHMARK = ("kmtl.benchmark",)


def _set(column, row, value):
  def edit(frame):
    frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
    frame.loc[row, column] = value
    return frame
  return edit


def _labels(task, value):
  def edit(frame):
    frame.loc[frame[task].notna(), task] = value
    return frame
  return edit


def _head(rows):
  return lambda frame: frame.iloc[:rows]


def _two_labels_per_task(frame):
  rows = [i for task in ("resistivity", "hardness", "amorphous")
          for i in frame.index[frame[task].notna()][:2]]
  return frame.loc[sorted(set(rows))]


def _fractions_only(edit):
  return lambda frame: edit(frame.drop(columns="composition"))


def _fractions_absent(edit):
  """The table with its composition column and no element fraction columns."""
  def without(frame):
    frame = edit(frame)
    symbols = featurize.element_table().index
    return frame.drop(columns=[c for c in frame.columns if c in symbols])
  return without


def _with_temperature(value):
  def edit(frame):
    frame["test_temperature_c"] = 25.0
    frame.loc[2, "test_temperature_c"] = value
    return frame
  return edit


def _structure(first, rest):
  """A class column labelled on the hardness rows: `first` on the first, `rest` on the others."""
  def edit(frame):
    labelled = np.flatnonzero(frame["hardness"].notna())
    frame["structure"] = None
    frame.loc[labelled, "structure"] = rest
    frame.loc[labelled[0], "structure"] = first
    return frame
  return edit


def _damaged_pages(frame):
  """The table as it is; `_write_bad` then garbles 400 bytes of its data pages (its footer
  stays readable, so the damage shows only while the rows are read)."""
  return frame


_damaged_pages.damages_file = True


def _datetime_column(frame):
  frame["vec"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(frame)), "D")
  return frame


def _fractions_disagree(frame):
  frame.loc[3, "composition"] = "Fe50Ni50"
  return frame


# (id, program, arguments, edit of the tiny table or raw text for BAD, exit code, fragment)
CATALOGUE = [
    # --- kmtl.run: flags
    ("unknown_surgery", RUN, ["--surgery=pcgard"], None, 1, "Expected one of ['none', 'pcgrad'"),
    ("negative_lr", RUN, ["--lr=-0.1"], None, 1, "Expected > 0. Received: -0.1"),
    ("zero_epochs", RUN, ["--epochs=0"], None, 1, "must be >= 1"),
    ("zero_batch", RUN, ["--batch_size=0"], None, 1, "batch_size"),
    ("missing_data_file", RUN, ["--data=/nonexistent/alloys.csv"], None, 1,
     "--data: no such file: /nonexistent/alloys.csv"),
    ("misspelt_shipped_set", RUN, ["--data=mpae"], None, 1,
     "--data: no such file: mpae (nor a shipped set: mpea, glass_cerebral)"),
    ("missing_task_column", RUN, ["--tasks=resistivity,yield_strength:regression"], None, 1,
     "missing task target column(s) 'yield_strength'"),
    ("unknown_task_kind", RUN, ["--tasks=hardness:ordinal"], None, 1, "ordinal"),
    ("unknown_transform", RUN, ["--tasks=hardness:regression:sqrt"], None, 1, "sqrt"),
    ("task_weights_count", RUN, ["--task_weights=1,2"], None, 1, "--task_weights: expected 3"),
    ("task_weights_word", RUN, ["--task_weights=heavy"], None, 1, "--task_weights: expected one of"),
    ("surgery_on_independent", RUN, ["--arch=independent", "--surgery=gradnorm"], None, 1,
     "needs shared parameters"),
    ("unknown_arch", RUN, ["--arch=sharde"], None, 1, "--arch=sharde"),
    ("groups_name_an_unknown_task", RUN, ["--arch=groups", "--groups=resistivity|hardnes,amorphous"],
     None, 1, "--groups: 'hardnes' is not one of --tasks"),
    ("groups_leave_a_task_out", RUN, ["--arch=groups", "--groups=resistivity|hardness"], None, 1,
     "--groups leaves out task 'amorphous': every task needs a group"),
    ("groups_without_their_arch", RUN, ["--groups=resistivity|hardness,amorphous"], None, 1,
     "--groups applies to --arch=groups, not --arch=shared"),
    ("groups_arch_without_groups", RUN, ["--arch=groups"], None, 1,
     "--arch=groups needs --groups"),
    ("no_experts", RUN, ["--arch=mmoe", "--experts=0"], None, 1,
     "--experts and --task_experts must be >= 1. Received: 0, 1"),
    ("three_ple_levels", RUN, ["--arch=ple", "--ple_levels=3"], None, 1,
     "--ple_levels must be one of [1, 2]. Received: 3"),
    ("fractions_leave_no_training", RUN, ["--val_fraction=0.6", "--test_fraction=0.5"], None, 1,
     "must leave rows to train on"),
    ("malformed_method_arguments", RUN, ["--surgery_args=alpha"], None, 1,
     "--surgery_args: expected name=value pairs"),
    ("method_argument_not_a_number", RUN, ["--surgery=gradnorm", "--surgery_args=alpha=abc"],
     None, 1, "--surgery_args: gradnorm's alpha takes a number. Received: 'abc'"),
    ("negative_seed", RUN, ["--seed=-1"], None, 1, "--seed must be >= 0. Received: -1"),
    ("negative_synthetic_seed", RUN, ["--synthetic_seed=-1"], None, 1,
     "--synthetic_seed must be >= 0. Received: -1"),
    ("negative_affinity_batches", RUN, ["--affinity_batches=-1"], None, 1,
     "--affinity_batches must be >= 0 (0: no sampled affinity). Received: -1"),
    ("lds_on_binary_task", RUN, ["--imbalance=lds", "--imbalance_tasks=amorphous"], None, 1,
     "task 'amorphous' is binary"),
    ("unknown_imbalance", RUN, ["--imbalance=smote"], None, 1, "smote"),
    ("unknown_element_flag", RUN, ["--elements=Fe,NI"], None, 1,
     "--elements: unknown element symbol 'NI'"),
    ("unknown_feature_column", RUN, ["--features=no_such_column"], None, 1,
     "missing feature column(s) 'no_such_column'"),
    ("row_filter_syntax", RUN, ["--row_filter=hardness >"], None, 1, "--row_filter"),
    ("row_filter_keeps_nothing", RUN, ["--row_filter=hardness > 1e9"], None, 1, "--row_filter"),
    ("unknown_convention", RUN, ["--composition_convention=metric"], None, 1,
     "--composition_convention"),
    ("dropout_above_one", RUN, ["--dropout=1.5"], None, 1, "dropout"),
    ("dropout_rates_not_one_per_level", RUN, ["--dropout=0.1,0.2"], None, 1,
     "--dropout: 2 rates for 3 hidden levels"),
    ("dropout_rate_not_a_number", RUN, ["--dropout=0.1,high"], None, 1,
     "--dropout=0.1,high: expected a rate"),
    ("trunk_width_of_zero", RUN, ["--trunk_units=128,0"], None, 1,
     "--trunk_units=128,0: every width must be >= 1"),
    ("negative_input_noise", RUN, ["--input_noise=-0.1"], None, 1, "--input_noise=-0.1"),
    ("negative_weight_decay", RUN, ["--weight_decay=-1e-4"], None, 1, "--weight_decay=-0.0001"),
    ("ema_momentum_of_one", RUN, ["--ema=1"], None, 1, "--ema=1.0: expected a momentum"),
    ("plateau_patience_beyond_stopping", RUN, ["--lr_schedule=plateau",
                                               "--lr_plateau_patience=30"], None, 1,
     "--lr_plateau_patience=30: expected at least 1 and less than --patience=20"),
    ("negative_feature_selection", RUN, ["--select_features=-3"], None, 1,
     "--select_features=-3: needs 0"),
    ("layer_norm_on_experts", RUN, ["--layer_norm", "--arch=mmoe"], None, 1,
     "--layer_norm normalises Dense layers"),
    ("tune_without_trials", ("kmtl.tune",), ["--out=OUT", "--tune_trials=0"], None, 1,
     "--tune_trials: kmtl tune needs 1 or more trials"),
    ("tune_inverted_range", ("kmtl.tune",), ["--out=OUT", "--search_space=lr=1e-2:1e-4:log"],
     None, 1, "--search_space: lr: empty or inverted range"),
    ("tune_unknown_parameter", ("kmtl.tune",), ["--out=OUT", "--search_space=momentum=0:1"],
     None, 1, "--search_space: unknown parameter 'momentum'"),
    ("study_negative_trials", STUDY, ["--out=OUT", "--tune_trials=-2"], None, 1,
     "--tune_trials=-2: needs 0 or more"),
    ("study_negative_rope", STUDY, ["--out=OUT", "--rope=r2:-0.01"], None, 1,
     "--rope: 'r2:-0.01': expected METRIC:WIDTH or METRIC:PERCENT%, a width of 0 or more"),
    ("study_rope_for_an_unreported_metric", STUDY, ["--out=OUT", "--rope=r2:0.02,accuracy:0.01",
                                                    "--tasks=hardness"], None, 1,
     "--rope: the study reports no accuracy"),
    ("study_target_effect_not_a_number", STUDY, ["--out=OUT", "--target_effect=r2:big"], None,
     1, "--target_effect: 'r2:big': expected METRIC:WIDTH"),
    ("study_tuned_on_an_unknown_task", STUDY, ["--out=OUT", "--tune_trials=2",
                                               "--tune_tasks=hardness,density"], None, 1,
     "--tune_tasks: density is not a task of this run"),
    ("tune_on_no_folds", ("kmtl.tune",), ["--out=OUT", "--tune_folds=0"], None, 1,
     "--tune_folds=0: needs 1 (the validation rows) or more"),
    ("tune_on_a_task_twice", ("kmtl.tune",), ["--out=OUT", "--tune_tasks=hardness,hardness"],
     None, 1, "--tune_tasks=hardness,hardness: a task is named twice"),
    ("positional_argument", RUN, ["extra"], None, 1, "unexpected arguments ['extra']"),
    ("workdir_is_a_file", RUN, ["--workdir=FILE"], None, 1, "--workdir: FILE is a file"),
    ("workdir_under_a_file", RUN, ["--workdir=FILE/run"], None, 1,
     "--workdir: cannot create FILE/run: FILE is a file"),
    ("workdir_where_no_folder_can_be_made", RUN, ["--workdir=/proc/kmtl-run"], None, 1,
     "--workdir: cannot create folders in /proc"),
    ("export_dir_is_a_file", RUN, ["--workdir=OUT", "--export_dir=FILE"], None, 1,
     "--export_dir: FILE is a file, not a folder"),
    ("export_without_workdir", RUN, ["--export_dir=OUT"], None, 1,
     "--export_dir needs --workdir"),
    ("export_of_per_task_selection", RUN, ["--workdir=OUT/run", "--export_dir=OUT/export",
                                           "--model_selection=per_task"], None, 1,
     "--export_dir exports one set of weights; --model_selection=per_task"),
    ("unknown_condition_kind", RUN, ["--conditions=test_type:ordinal"], None, 1,
     "--conditions: Invalid kind 'ordinal' for condition 'test_type'"),
    ("missing_condition_column", RUN, ["--conditions=test_temperature_c"], None, 1,
     "missing condition column(s) 'test_temperature_c'"),
    ("conditions_with_average_repeats", RUN, ["--conditions=vec", "--average_repeats"], None,
     1, "--average_repeats would mix measurements under other --conditions"),
    ("condition_value_missing", RUN, ["--data=BAD.csv", "--conditions=test_temperature_c"],
     _with_temperature(np.nan), 1, "row 3, column 'test_temperature_c': missing"),
    ("condition_below_absolute_zero", RUN, ["--data=BAD.csv",
                                            "--conditions=test_temperature_c"],
     _with_temperature(-300.0), 1, "-300 is below absolute zero"),
    ("one_class_listed", RUN, ["--tasks=hardness,phase:multiclass:BCC"], None, 1,
     "Task 'phase' lists one class 'BCC': a multiclass task needs at least 2"),
    ("lds_on_multiclass_task", RUN, ["--tasks=hardness,phase:multiclass", "--imbalance=lds",
                                     "--imbalance_tasks=phase"], None, 1,
     "task 'phase' is multiclass; LDS"),
    ("unknown_class_label", RUN, ["--data=BAD.csv", "--tasks=hardness,structure:multiclass:BCC|FCC"],
     _structure("HCP", "BCC"), 1, "column 'structure': unknown class 'HCP'; expected one of"),
    ("class_on_a_single_row", RUN, ["--data=BAD.csv", "--tasks=hardness,structure:multiclass"],
     _structure("HCP", "BCC"), 1, "class 'HCP' is on this row alone"),
    ("numbers_beside_class_names", RUN, ["--data=BAD.csv",
                                         "--tasks=hardness,structure:multiclass"],
     _structure("BCC", "1"), 1, "class 'BCC' is a name but ['1'] are numbers"),
    ("classes_differ_in_case", RUN, ["--data=BAD.csv", "--tasks=hardness,structure:multiclass"],
     _structure("bcc", "BCC"), 1, "classes 'BCC' and 'bcc' differ only in case"),
    ("one_class_in_the_data", RUN, ["--data=BAD.csv", "--tasks=hardness,structure:multiclass"],
     _structure("FCC", "FCC"), 1, "multiclass task 'structure' has 40 labels, all 'FCC'"),
    ("one_fold", RUN, ["--cv=1"], None, 1, "--cv needs 2 or more folds"),
    ("fold_file_of_other_data", RUN, ["--folds=matbench_steels"], None, 1,
     "--folds=matbench_steels: 312 rows, but DATA has 160; a fold file holds one row per"),
    ("folds_and_cv_disagree", RUN, ["--folds=matbench_steels", "--cv=3"], None, 1,
     "--cv=3 but --folds=matbench_steels has 5 folds; drop --cv"),
    ("missing_fold_file", RUN, ["--folds=/nonexistent/folds.csv"], None, 1,
     "--folds: no such file: /nonexistent/folds.csv (nor shipped folds: matbench_steels"),
    ("fold_file_without_folds", RUN, ["--folds=BAD.csv"], _head(5), 1,
     "missing fold column(s) 'fold'"),
    ("benchmark_without_its_data", BENCHMARK, ["--name=matbench_steels",
                                               "--data_dir=/nonexistent", "--out=OUT"], None,
     1, "--data_dir: no steel_strength.csv in /nonexistent"),
    ("unknown_benchmark", BENCHMARK, ["--name=matbench_dielectric", "--out=OUT"], None, 1,
     "matbench_dielectric"),
    ("held_out_fold_outside", RUN, ["--cv=5", "--cv_fold=5"], None, 1,
     "--cv_fold one of them. Received: (5, 5)"),
    ("more_folds_than_compositions", RUN, ["--cv=500"], None, 1,
     "--cv=500: the data has only"),
    # --- kmtl.run: files that are not tables
    ("empty_file", RUN, ["--data=BAD.csv"], "", 1, "BAD"),
    ("header_only", RUN, ["--data=BAD.csv"], _head(0), 1, "BAD"),
    ("unknown_extension", RUN, ["--data=BAD.xlsx"], "PK\x03\x04", 1, "unknown file type '.xlsx'"),
    ("binary_garbage", RUN, ["--data=BAD.csv"], "\x00\x01\x02PK\x03\x04\x00", 1, "BAD"),
    ("corrupt_parquet", RUN, ["--data=BAD.parquet"], "not parquet at all", 1, "BAD.parquet"),
    ("datetime_column", RUN, ["--data=BAD.parquet"], _datetime_column, 1, "'vec'"),
    # --- kmtl.run: a table that streams (kmtl/data/streaming.py)
    ("streamed_row_filter", RUN, ["--data=BAD.parquet", "--memory_budget_gb=0",
                                  "--row_filter=hardness > 0", "--workdir=OUT"],
     lambda frame: frame, 1, "it streams, and --row_filter needs the whole table"),
    ("streamed_negative_fraction", RUN, ["--data=BAD.parquet", "--memory_budget_gb=0",
                                         "--workdir=OUT"], _set("Fe", 4, -0.2), 1, "row 5"),
    ("streamed_damaged_pages", RUN, ["--data=BAD.parquet", "--memory_budget_gb=0",
                                     "--workdir=OUT"], _damaged_pages, 1,
     "BAD.parquet: damaged Parquet data after row 0"),
    ("study_streamed_table", STUDY, ["--out=OUT", "--data=BAD.parquet",
                                     "--memory_budget_gb=0"], lambda frame: frame, 1,
     "a study runs tables in memory"),
    # --- the synthetic set's knobs and the controlled experiments
    ("knob_latent_out_of_range", RUN, ["--synthetic_latent=1.5"], None, 1,
     "--synthetic_latent=1.5"),
    ("knob_unknown_form", RUN, ["--synthetic_forms=hardness:cubic"], None, 1,
     "unknown form 'cubic'"),
    ("knob_count_not_a_number", RUN, ["--synthetic_counts=hardness:many"], None, 1,
     "--synthetic_counts: 'hardness:many' is not task:value"),
    ("knobs_on_a_file", RUN, ["--synthetic_latent=0.5"], None, 1,
     "--synthetic_* flags shape the embedded synthetic set"),
    ("experiment_on_a_file", STUDY, ["--out=OUT", "--experiment=overlap"], None, 1,
     "--experiment=overlap runs on the synthetic set; drop --data"),
    ("synthetic_parts_csv", ("kmtl.data.synthetic",), ["--out=OUT.csv", "--parts=3"], None, 1,
     "--parts writes Parquet only"),
    ("advise_one_task", ("kmtl.advise",), ["--tasks=resistivity"], None, 1,
     "the advisor needs at least two tasks"),
    ("advise_no_probe", ("kmtl.advise",), ["--probe_epochs=0"], None, 1,
     "--probe_epochs and --probe_batches must be >= 1"),
    ("memory_budget_negative", RUN, ["--memory_budget_gb=-1"], None, 1,
     "--memory_budget_gb=-1"),
    # --- kmtl.run: values that are wrong
    ("text_in_fraction", RUN, ["--data=BAD.csv"], _set("Fe", 4, "lots"), 1, "row 5"),
    ("negative_fraction", RUN, ["--data=BAD.csv"], _set("Fe", 4, -0.2), 1, "row 5"),
    ("fractions_sum_wrong", RUN, ["--data=BAD.csv"], _fractions_only(_set("Fe", 4, 1.7)), 1,
     "row 5"),
    ("unknown_element_in_formula", RUN, ["--data=BAD.csv"], _set("composition", 4, "Fe50Qq50"), 1,
     "unknown element 'Qq'"),
    ("unparseable_formula", RUN, ["--data=BAD.csv"], _set("composition", 4, "Fe(("), 1, "row 5"),
    ("empty_bracket_group", RUN, ["--data=BAD.csv"], _fractions_absent(
        _set("composition", 4, "()10Fe90")), 1, "an empty bracket group in composition"),
    ("overflowing_amounts", RUN, ["--data=BAD.csv"], _fractions_absent(
        _set("composition", 4, "Fe1e308Ni1e308")), 1, "row 5, column 'composition': "
     "composition 'Fe1e308Ni1e308' has amounts too large to add up"),
    ("formula_disagrees_with_fractions", RUN, ["--data=BAD.csv"], _fractions_disagree, 1, "row 4"),
    ("vec_impossible", RUN, ["--data=BAD.csv"], _set("vec", 4, 1e30), 1, "'vec'"),
    ("melting_point_negative", RUN, ["--data=BAD.csv"], _set("melting_point_k", 4, -1800.0), 1,
     "'melting_point_k'"),
    ("descriptor_not_finite", RUN, ["--data=BAD.csv"], _set("vec", 4, np.inf), 1, "'vec'"),
    ("float32_overflow", RUN, ["--data=BAD.csv"], _set("mixing_enthalpy_kj_mol", 4, 1e39), 1,
     "row 5"),
    ("hardness_impossible", RUN, ["--data=BAD.csv"], _set("hardness", 1, 1e30), 1, "'hardness'"),
    ("resistivity_negative", RUN, ["--data=BAD.csv"], _set("resistivity", 0, -5.0), 1,
     "'resistivity'"),
    ("binary_label_two", RUN, ["--data=BAD.csv"], _set("amorphous", 2, 2.0), 1, "'amorphous'"),
    ("binary_task_one_class", RUN, ["--data=BAD.csv"], _labels("amorphous", 0.0), 1,
     "binary task 'amorphous' has 40 labels, all 0: it needs both classes"),
    ("constant_regression_target", RUN, ["--data=BAD.csv"], _labels("hardness", 300.0), 1,
     "regression task 'hardness' has 40 labels, all 300"),
    ("task_without_labels", RUN, ["--data=BAD.csv"], _labels("hardness", np.nan), 1,
     "task 'hardness' has no labels"),
    ("too_few_rows", RUN, ["--data=BAD.csv"], _two_labels_per_task, 1,
     "every split needs at least one"),
    # --- kmtl.study
    ("study_without_out", STUDY, [], None, 1, "--out is required"),
    ("study_zero_seeds", STUDY, ["--out=OUT", "--seeds=0"], None, 1, "--seeds"),
    ("study_unknown_method", STUDY, ["--out=OUT", "--grid=shared:pcgard"], None, 1, "pcgard"),
    ("study_surgery_on_independent", STUDY, ["--out=OUT", "--grid=independent:pcgrad"], None, 1,
     "needs shared parameters"),
    ("study_task_weights", STUDY, ["--out=OUT", "--task_weights=heavy"], None, 1,
     "--task_weights"),
    ("study_feature_column", STUDY, ["--out=OUT", "--features=no_such_column"], None, 1,
     "missing feature column(s) 'no_such_column'"),
    ("study_row_filter", STUDY, ["--out=OUT", "--row_filter=hardness >"], None, 1,
     "--row_filter"),
    ("study_degenerate_task", STUDY, ["--out=OUT", "--data=BAD.csv"], _labels("amorphous", 1.0), 1,
     "binary task 'amorphous'"),
    ("study_out_is_a_file", STUDY, ["--out=FILE"], None, 1, "FILE"),
    ("study_folds_and_seeds", STUDY, ["--out=OUT", "--cv=3", "--seeds=2"], None, 1,
     "--cv=3: the cells are its 3 folds"),
    ("study_no_repeats", STUDY, ["--out=OUT", "--cv=3", "--repeats=0"], None, 1,
     "--repeats=0: needs 1 or more"),
    ("study_repeats_without_folds", STUDY, ["--out=OUT", "--repeats=2"], None, 1,
     "--repeats=2 repeats --cv's folds; add --cv=K"),
    # --- kmtl.run: uncertainty flags
    ("ensemble_of_none", RUN, ["--ensemble=0"], None, 1,
     "--ensemble=0: an ensemble needs at least 1 member"),
    ("mc_samples_without_dropout", RUN, ["--mc_samples=20"], None, 1,
     "--mc_samples=20 needs --dropout > 0"),
    ("mc_samples_of_one", RUN, ["--mc_samples=1", "--dropout=0.1"], None, 1,
     "MC dropout needs 2 or more samples"),
    ("mc_samples_with_an_ensemble", RUN, ["--mc_samples=8", "--dropout=0.1", "--ensemble=3"],
     None, 1, "choose one source of model uncertainty"),
    ("uncertainty_head_without_regression", RUN, ["--uncertainty_head", "--tasks=amorphous"],
     None, 1, "--uncertainty_head applies to regression tasks"),
    ("uncertainty_head_with_huber", RUN, ["--uncertainty_head", "--regression_loss=huber"], None,
     1, "--regression_loss=huber would replace it"),
    ("uncertainty_head_with_gradnorm", RUN, ["--uncertainty_head", "--surgery=gradnorm"], None, 1,
     "--surgery=gradnorm reads task losses as positive magnitudes"),
    ("uncertainty_head_with_relative_stopping", RUN,
     ["--uncertainty_head", "--stopping=relative_val_loss"], None, 1,
     "--stopping=relative_val_loss reads task losses as positive magnitudes"),
    ("unknown_precision", RUN, ["--precision=float16"], None, 1,
     "--precision=float16: expected one of ['float32', 'bfloat16']"),
    ("ensemble_jobs_zero", RUN, ["--ensemble=2", "--ensemble_jobs=0"], None, 1,
     "--ensemble_jobs=0: needs 1 or more"),
    ("study_dask_without_address", STUDY, ["--executor=dask", "--out=OUT/s"], None, 1,
     "--executor=dask needs --address=HOST:PORT"),
    ("study_dask_scheduler_unreachable", STUDY, ["--executor=dask", "--address=127.0.0.1:9",
                                                 "--out=OUT/s"], None, 1,
     "--address=127.0.0.1:9: no Dask scheduler answers there within 10s"),
    ("study_address_without_dask", STUDY, ["--address=localhost:8786", "--out=OUT/s"], None, 1,
     "--address applies to --executor=dask"),
    # --- kmtl.predict (the model is checked before the data, the data before TensorFlow)
    ("predict_without_model", PREDICT, ["--data=DATA", "--out=OUT/p.csv"], None, 1,
     "--model is required"),
    ("predict_missing_model", PREDICT, ["--model=/nonexistent/model", "--data=DATA",
                                        "--out=OUT/p.csv"], None, 1, "no saved_model.pb"),
    ("predict_version_without_graph", PREDICT, ["--model=MODEL/empty", "--data=DATA",
                                                "--out=OUT/p.csv"], None, 1,
     "no saved_model.pb; an incomplete or damaged export"),
    ("predict_corrupt_metadata", PREDICT, ["--model=MODEL/corrupt", "--data=DATA",
                                           "--out=OUT/p.csv"], None, 1, "unreadable"),
    ("predict_out_extension", PREDICT, ["--model=MODEL/corrupt", "--data=DATA",
                                        "--out=OUT/p.xlsx"], None, 1,
     "--out=OUT/p.xlsx: unknown file type '.xlsx'"),
    ("predict_out_under_a_file", PREDICT, ["--model=MODEL/corrupt", "--data=DATA",
                                          "--out=FILE/p.csv"], None, 1, "FILE is a file"),
    ("export_to_a_file", ("kmtl.export",), ["--workdir=OUT", "--export_dir=FILE"], None, 1,
     "--export_dir: cannot create FILE/kmtl: FILE is a file"),
    ("predict_on_error_value", PREDICT, ["--on_error=ignore"], None, 1, "--on_error"),
    # --- the kmtl command
    ("kmtl_unknown_subcommand", ("kmtl.cli", "trian"), [], None, 2, "unknown subcommand 'trian'"),
    ("kmtl_train_bad_flag", ("kmtl.cli", "train"), ["--lr=0"], None, 1, "Expected > 0"),
]


def _write_bad(root, name, arguments, edit):
  """The row's BAD table: raw text, or an edit of the tiny table, in the format its path
  names."""
  suffix = next((a[a.index("BAD") + 3:] for a in arguments if "BAD." in a), ".csv")
  path = root / f"{name}{suffix}"
  if isinstance(edit, str):
    path.write_bytes(edit.encode("latin-1"))
  elif edit is not None:
    frame = edit(helpers.tiny_frame(per_task=40))
    if suffix == ".parquet":
      frame.to_parquet(path, compression="snappy", row_group_size=50)
    else:
      frame.to_csv(path, index=False)
    if getattr(edit, "damages_file", False):
      data = bytearray(path.read_bytes())
      for i in range(len(data) // 3, len(data) // 3 + 400):
        data[i] ^= 0x5A
      path.write_bytes(bytes(data))
  return str(path)[:-len(suffix)]


def _damaged_models(root):
  empty, corrupt = root / "model" / "empty" / "3", root / "model" / "corrupt" / "1"
  empty.mkdir(parents=True)
  (corrupt / "assets.extra").mkdir(parents=True)
  (corrupt / "saved_model.pb").write_bytes(b"\x00")
  (corrupt / "assets.extra" / "kmtl_metadata.json").write_text("{not json")
  return str(root / "model")


def _command(root, case, data, model):
  name, program, arguments, edit, _, _ = case
  bad = _write_bad(root, name, arguments, edit)
  places = {"BAD": bad, "DATA": data, "OUT": str(root / f"out-{name}"),
            "FILE": str(root / "file.txt"), "MODEL": model}
  def placed(text):
    for key, value in places.items():
      text = text.replace(key, value)
    return text
  if program[0] in ("kmtl.run", "kmtl.study") and not any(a.startswith("--data") for a in arguments):
    arguments = [*arguments, "--data=DATA"]
  return [sys.executable, "-m", *program, *map(placed, arguments)], placed


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
  """{row id: (completed process, placeholder filler, root)} for every row, run concurrently."""
  root = tmp_path_factory.mktemp("bad_inputs")
  data = root / "good.csv"
  helpers.tiny_frame(per_task=40).to_csv(data, index=False)
  (root / "file.txt").write_text("keep me")
  model = _damaged_models(root)
  commands = {case[0]: _command(root, case, str(data), model) for case in CATALOGUE}
  done = dict(zip(commands, _run_forked(root, [c for c, _ in commands.values()])))
  return {name: (done[name], commands[name][1], root) for name in commands}


def _run_forked(root, commands):
  """Completed processes of `python -m` commands, each forked by tests/command_server.py."""
  logs = root / "logs"
  logs.mkdir()
  jobs = [{"module": command[2], "args": command[3:], "stdout": str(logs / f"{i}.out"),
           "stderr": str(logs / f"{i}.err")} for i, command in enumerate(commands)]
  server = subprocess.run([sys.executable, "-m", "tests.command_server",
                           str(2 * (os.cpu_count() or 1))], input=json.dumps(jobs),
                          capture_output=True, text=True, check=True, timeout=600,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  statuses = json.loads(server.stdout.strip().splitlines()[-1])
  return [subprocess.CompletedProcess(command, status, (logs / f"{i}.out").read_text(),
                                      (logs / f"{i}.err").read_text())
          for i, (command, status) in enumerate(zip(commands, statuses))]


def test_the_catalogue_is_large_and_names_are_unique():
  assert len(CATALOGUE) >= 60
  assert len({case[0] for case in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("case", CATALOGUE, ids=[case[0] for case in CATALOGUE])
def test_bad_input_is_one_line_and_leaves_nothing(outcomes, case):
  name, _, _, _, code, fragment = case
  result, placed, root = outcomes[name]
  assert result.returncode == code, result.stderr
  assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
  # absl's flag parser adds a "Pass --helpshort ..." line after its one-line error.
  message = [line for line in result.stderr.strip().splitlines()
             if not line.startswith("Pass --help")][-1]
  assert placed(fragment) in message, result.stderr
  assert not os.path.exists(root / f"out-{name}")
  assert (root / "file.txt").read_text() == "keep me"
