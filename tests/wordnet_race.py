"""Run by tests/test_concurrency.py in a fresh process: ``single`` reads the senses of eight class
lists one after another; ``threads`` has 8 threads do their first WordNet work at once (a
barrier releases them together). Prints the answers as JSON, or the errors."""
import json
import sys
import threading

from zsdemo.wordnet import senses as wordnet

LISTS = [["cat", "dog", "crane", "heron"], ["crane", "bulldozer", "excavator"], ["mouse", "keyboard", "tiger"],
         ["seal", "walrus", "boxer"], ["rocket", "missile", "lighthouse", "chimney"], ["coffee mug", "espresso", "cup"],
         ["tabby cat", "lynx", "Persian cat"], ["astronaut", "pilot", "nurse", "robot"]]

def answer(names):
    return [(c.name, c.chosen.synset if c.chosen else None, c.parent_synset, c.children_synsets)
            for c in wordnet.resolve(names)]

mode = sys.argv[1]
if mode == "single":
    print(json.dumps([answer(n) for n in LISTS]))
else:
    out, errors = [None] * len(LISTS), []
    barrier = threading.Barrier(len(LISTS))
    def work(i):
        barrier.wait()
        try:
            out[i] = answer(LISTS[i])
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(LISTS))]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(json.dumps(out if not errors else {"errors": errors}))
