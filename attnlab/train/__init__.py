"""Training the course's Transformer: data (``data``), the loop and its CLI (``loop``).

``python -m attnlab.train --task dates`` trains; this subpackage imports the library
(``attnlab``), and the library never imports it.
"""
