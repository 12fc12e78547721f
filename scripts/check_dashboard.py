"""Checks that template.yaml's dashboard body is valid JSON once CloudFormation has substituted it (the
linters see only a string). Run by scripts/test.sh with the tools' Python (PyYAML comes with cfn-lint)."""
import yaml, json, re
class L(yaml.SafeLoader): pass
def tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode): v=loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode): v=loader.construct_sequence(node, deep=True)
    else: v=loader.construct_mapping(node, deep=True)
    return {suffix: v}
L.add_multi_constructor('!', tag)
t=yaml.load(open('template.yaml'), Loader=L)
body=t['Resources']['Dashboard']['Properties']['DashboardBody']['Sub']
outer, vars_ = body
def sub(s, extra={}):
    return re.sub(r'\$\{([^}]+)\}', lambda m: extra.get(m.group(1), 'X'), s)
vals={k: sub(v['Sub']) for k,v in vars_.items()}
j=json.loads(sub(outer, vals))
assert len(j["widgets"]) == 4, j
print(f"dashboard: {len(j['widgets'])} widgets, valid JSON")
