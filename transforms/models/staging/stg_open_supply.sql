{{ stage_input('open_supply') }}
