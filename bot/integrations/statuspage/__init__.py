"""The public status page, fed only from an approved draft: status.io or Atlassian Statuspage.

* :mod:`.config`: the policy's ``status_page:`` section and the provider's environment settings (pure);
* :mod:`.safety`: what must not go out in a draft (mentions, GitLab references, internal URLs, e-mail addresses);
* :mod:`.plan`: the one action a publish needs (create / update / resolve / nothing), its outbox key and the
  neutral incident name the bot finds again, and why a publish must send nothing (pure);
* :mod:`.result`: what an adapter answers (``Sent``, ``Refused``, ``Unavailable``, ``Ambiguous``);
* :mod:`.statusio` and :mod:`.atlassian`: the two adapters, over HTTP (:mod:`.http`: one request, as a result).
"""
