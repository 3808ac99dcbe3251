"""serve/options"""
