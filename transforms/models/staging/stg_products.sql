{{ stage_input('products') }}
