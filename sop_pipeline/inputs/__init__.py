"""The input contract and its readers.

`contract` declares which files a company hands over, their columns, types and rules, once;
`validate` checks a data folder against it before anything is written; `dbt` turns it into
what dbt reads (each source's read expression, and the generated source and staging YAML).
"""
