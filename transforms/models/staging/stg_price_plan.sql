{{ stage_input('price_plan') }}
