{{ stage_input('sales_history') }}
