{{ stage_input('inventory') }}
