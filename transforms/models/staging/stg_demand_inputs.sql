{{ stage_input('demand_inputs') }}
