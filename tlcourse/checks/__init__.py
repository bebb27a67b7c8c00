"""Exercise checks: one module per lesson, on one shared verdict base.

    tlcourse.checks.base       run_check, expect, call, CheckFailed and the verdicts ✅ PASS, ⏳ TODO, ❌ FAIL
    tlcourse.checks.lesson00   exercise 0.1        notebooks/00_setup_tour.ipynb
    tlcourse.checks.lesson01   exercises 1.1–1.3   notebooks/01_feature_extraction.ipynb
    tlcourse.checks.lesson02   exercises 2.1–2.3   notebooks/02_fine_tuning.ipynb
    tlcourse.checks.lesson03   exercises 3.1–3.4   notebooks/03_bert_sentiment.ipynb
    tlcourse.checks.lesson04   exercises 4.1–4.3   notebooks/04_domain_adaptation.ipynb
    tlcourse.checks.lesson05   exercises 5.1–5.4   notebooks/05_lora_peft.ipynb
    tlcourse.checks.lesson06   exercises 6.1–6.3   notebooks/06_choosing_a_source.ipynb

A notebook imports its checks by name, e.g. `from tlcourse.checks.lesson03 import check_mean_pool`. The modules are
named after the lesson rather than its topic, so a check module is never mistaken for the lesson code it checks
(`tlcourse.checks.lesson01` checks exercises that use `tlcourse.features`). Nothing is imported here: each lesson's
checks load only what that lesson needs.
"""
