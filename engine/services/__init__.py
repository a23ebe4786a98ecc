"""What the front ends call: the ``Library`` facade and the long-running work behind it (import,
re-embed, doctor, edits with their journal, registered jobs). Long operations are generators."""
