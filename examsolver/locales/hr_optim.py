"""Hrvatske fraze optimizatora (engine/optim): koraci, stanje, podrezivanje, konvencije."""

PHRASES = {
    "optim.section.step": "{t}. korak optimizacije ({optimizer})",
    "optim.gradient": "Gradijent parametra {name}:",
    "optim.gradient_l2": "Gradijent parametra {name} s dodanim članom opadanja težina λθ (regularizacija L2):",
    "optim.momentum_first": "Zamah (brzina) parametra {name}: u prvom koraku jednak je gradijentu:",
    "optim.momentum": "Ažuriranje zamaha (brzine) parametra {name}:",
    "optim.update": "Ažuriranje parametra {name}:",
    "optim.update_decoupled": "Ažuriranje parametra {name} s odvojenim opadanjem težina:",
    "optim.accumulator": "Zbroj kvadrata gradijenata parametra {name}:",
    "optim.lr_decay": "Stopa učenja u {t}. koraku:",
    "optim.square_avg": "Pomični prosjek kvadrata gradijenata parametra {name}:",
    "optim.grad_avg": "Pomični prosjek gradijenata parametra {name} (centrirani RMSprop):",
    "optim.first_moment": "Prvi moment (pomični prosjek gradijenata) parametra {name}:",
    "optim.second_moment": "Drugi moment (pomični prosjek kvadrata gradijenata) parametra {name}:",
    "optim.amsgrad": "AMSGrad: najveći dosadašnji drugi moment parametra {name}:",
    "optim.bias_correction": "Korekcija pristranosti momenata parametra {name}:",
    "optim.clip_norm": "Ukupna norma gradijenata svih parametara:",
    "optim.clip_coef": "Faktor podrezivanja: gradijenti se smanjuju na ukupnu normu c_max:",
    "optim.clip_none": "Faktor podrezivanja: ukupna norma ne prelazi c_max, pa gradijenti ostaju nepromijenjeni:",
    "optim.convention.sgd": "Gradijentni spust bez zamaha: θ ← θ − ηg.",
    "optim.convention.sgd_pytorch": "SGD sa zamahom kao u PyTorchu: v ← μv + (1 − τ)g (u prvom koraku v = g), "
                                    "θ ← θ − ηv.",
    "optim.convention.sgd_ema": "Zamah kao eksponencijalni pomični prosjek: v ← βv + (1 − β)g uz v⁽⁰⁾ = 0, "
                                "θ ← θ − ηv (PyTorch: v ← μv + g).",
    "optim.convention.sgd_velocity": "Zamah kao brzina: v ← μv − ηg uz v⁽⁰⁾ = 0, θ ← θ + v (pravilo PyTorcha "
                                     "uz v = −η·v_PyTorch).",
    "optim.convention.nesterov": "SGD s Nesterovljevim zamahom kao u PyTorchu: v ← μv + g (u prvom koraku v = g), "
                                 "a korak ide u smjeru gradijenta uvećanog za još jednom primijenjen zamah: "
                                 "θ ← θ − η(g + μv).",
    "optim.convention.nesterov_ema": "Nesterovljev zamah kao eksponencijalni pomični prosjek: v ← βv + (1 − β)g uz "
                                     "v⁽⁰⁾ = 0, θ ← θ − η(βv + (1 − β)g).",
    "optim.convention.nesterov_velocity": "Nesterovljev zamah kao brzina: v ← μv − ηg uz v⁽⁰⁾ = 0, θ ← θ + μv − ηg.",
    "optim.convention.adagrad": "Adagrad kao u PyTorchu: r ← r + g ⊙ g, θ ← θ − η g ⊘ (√r + ε).",
    "optim.convention.rmsprop": "RMSprop kao u PyTorchu: r ← αr + (1 − α)g ⊙ g, θ ← θ − η g ⊘ (√r + ε), "
                                "ε izvan korijena.",
    "optim.convention.adam": "Adam kao u PyTorchu: momenti s korekcijom pristranosti, θ ← θ − η m̂ ⊘ (√v̂ + ε); "
                             "opadanje težina dodaje se gradijentu (L2).",
    "optim.convention.adamw": "AdamW kao u PyTorchu: odvojeno opadanje težina, θ ← (1 − ηλ)θ − η m̂ ⊘ (√v̂ + ε).",
    "optim.convention.adam_no_bias_correction": "Adam bez korekcije pristranosti: momenti se koriste takvi kakvi jesu "
                                                "(m̂ = m, v̂ = v), θ ← θ − η m ⊘ (√v + ε); opadanje težina dodaje se "
                                                "gradijentu (L2).",
    "optim.convention.adamw_no_bias_correction": "AdamW bez korekcije pristranosti: odvojeno opadanje težina, momenti "
                                                 "se koriste takvi kakvi jesu (m̂ = m, v̂ = v), "
                                                 "θ ← (1 − ηλ)θ − η m ⊘ (√v + ε).",
    "optim.convention.clip_norm_pytorch": "Gradijenti se podrezuju po ukupnoj normi kao u "
                                          "`clip_grad_norm_` u PyTorchu: g ← g · min(1, c/(‖g‖ + 10⁻⁶)) uz c = {c}.",
    "optim.convention.clip_norm_exact": "Gradijenti se podrezuju po ukupnoj normi: g ← g · min(1, c/‖g‖) uz c = {c} "
                                        "(PyTorch normi dodaje 10⁻⁶).",
    "optim.convention.clip_value": "Svaki element gradijenta podrezuje se na [−c, c] uz c = {c} "
                                   "(kao `clip_grad_value_` u PyTorchu).",
}
