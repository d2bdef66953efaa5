"""The workspace's pages, one router each: Model, Leads (the table, uploads, the sample, the
CSV), Lead (a CRM lead or a flat row, with its what-if) and Outcomes."""
