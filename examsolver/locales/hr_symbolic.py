"""Hrvatske fraze simboličkih zadataka (derivacije, jakobijani, kod)."""

PHRASES = {
    "symbolic.note": "{text}",
    "symbolic.section.notes": "Napomene",
    "symbolic.section.definitions": "Definicije",
    "symbolic.section.derivative": "Derivacija {f} po {x}",
    "symbolic.section.gradient": "Gradijent {f} po {x}",
    "symbolic.section.jacobian": "Jakobijan {f} po {x}",
    "symbolic.section.evaluate": "Vrijednosti",
    "symbolic.section.simplify": "Pojednostavljenje",
    "symbolic.section.integrate": "Integral",
    "symbolic.section.solve": "Rješavanje po {unknown}",
    "symbolic.section.claim": "Provjera tvrdnje",
    "symbolic.section.plot": "Graf funkcije i njezine derivacije",
    "symbolic.section.code": "Implementacija u numpyju",
    "symbolic.max_ties": "Maksimum deriviramo po dijelovima: gradijent ide grani većeg argumenta; kad su "
                         "argumenti jednaki, gradijent ide prvom argumentu (kao kod sažimanja maksimumom u PyTorchu).",
    "symbolic.not_equal": "Napomena: {lhs} nije jednako {candidate}.",
    "symbolic.elementwise": "Aktivaciju primjenjujemo na svaki element zasebno: {y} = {value} za "
                            "{n}-dimenzionalni ulaz {x}.",
    "symbolic.diagonal": "Izlaz i ovisi samo o ulazu i, pa su svi elementi izvan dijagonale 0: jakobijan je dijagonalan.",
    "symbolic.not_diagonal": "Jakobijan ima elemente različite od nule izvan dijagonale.",
    "symbolic.values": "Za {values}:",
    "symbolic.domain": "{unknown} poprima vrijednosti iz {domain}.",
    "symbolic.case": "Slučaj {case}:",
    "symbolic.no_real_root": "Faktor {factor} nema realnih nultočaka (diskriminanta mu je {disc} < 0).",
    "symbolic.root_outside": "Faktor {factor} iščezava samo za {roots}, izvan dopuštenog područja.",
    "symbolic.factor_roots": "Faktor {factor} iščezava za {roots}.",
    "symbolic.no_solution": "Nijedna dopuštena vrijednost {unknown} ne zadovoljava jednadžbu.",
    "symbolic.solutions": "Rješenja po {unknown}: {solutions}.",
    "symbolic.claim_holds": "Tvrdnja {claimed} {source} slaže se s izvedenom vrijednošću {value}.",
    "symbolic.claim_fails": "Tvrdnja {claimed} {source} ne slaže se s izvedenom vrijednošću {value}.",
    "symbolic.claim_only_when": "Dvije vrijednosti jednake su samo kad je {condition}.",
    "symbolic.plot_caption": "Funkcija i njezina derivacija.",
    "symbolic.code_caption": "Generirani kod (numpy).",
    "symbolic.code_stable_softplus": "Izravni oblik `np.log(1 + np.exp(x))` preljeva se za velike x: "
                                     "`np.exp(1000) = inf`, a u unatražnom prolazu $e^x/(1 + e^x)$ postaje `inf/inf = nan`. "
                                     "Zato softplus računamo kao `np.logaddexp(0, x)`.",
    "symbolic.code_stable_sigmoid": "Sigmoidu računamo bez preljeva: izračunava se samo exp(−|x|) "
                                    "($1/(1 + e^{{-x}})$ za x ≥ 0, $e^x/(1 + e^x)$ za x < 0).",
    "symbolic.section.backprop_forward": "Unaprijedni prolaz (oblici u simboličkim veličinama)",
    "symbolic.section.backprop_backward": "Unatražni prolaz: gradijenti gubitka",
    "symbolic.section.backprop_check": "Provjera formula",
    "symbolic.backprop.input": "Ulaz {x} ima {shape} elemenata.",
    "symbolic.backprop.shape": "{q}, oblika {shape}:",
    "symbolic.backprop.loss.cross_entropy": "Negativna log izglednost (unakrsna entropija) s obzirom na ciljnu distribuciju "
                                  "{g} (za oznaku t zadanu jednojediničnim (one-hot) vektorom: $L = -\\ln o_t$):",
    "symbolic.backprop.loss.mse": "Kvadratni gubitak s obzirom na cilj {g}, bez faktora ½:",
    "symbolic.backprop.fused.cross_entropy": "Za softmax uz negativnu log izglednost vrijedi $\\partial L/\\partial {zj} = \\sum_k {gk} ({oj} - \\delta_{{jk}})$ "
                                     "$= {oj} \\sum_k {gk} - {gj}$; budući da je cilj {g} distribucija ($\\sum_k {gk} = 1$), "
                                     "gradijent po ulazu softmaksa {z} jest {o} − {g}.",
    "symbolic.backprop.grad.mse": "Derivacija kvadratnog gubitka po izlazu {o} jest 2({o} − {g}).",
    "symbolic.backprop.mask": "Zglobnica propušta gradijent ondje gdje je njezin ulaz pozitivan: {m} = {mask} "
                              "(derivaciju u 0 uzimamo kao 0; u rezultatima su njegovi elementi imenovani {entries}).",
    "symbolic.backprop.checked": "Formule smo primijenili na {sizes} sa simboličkim elementima; svih {count} "
                                 "elemenata gradijenata po parametrima jednako je sympyjevim derivacijama cijelog gubitka.",
    "symbolic.backprop.checked_distribution": "Formule smo primijenili na {sizes} sa simboličkim elementima (uz Σg = 1); svih "
                                     "{count} elemenata gradijenata po parametrima jednako je sympyjevim derivacijama "
                                     "cijelog gubitka.",
    "symbolic.section.minimize": "Minimizacija funkcije {f} optimizatorom {optimizer}",
}
